"""An admin's changes as journal records: what `HttpJournal` sends when the CLI or a
client changes stacks, settings, tags and deployment versions through a server.

Each route is one journal method with its own semantics (a taken stack name answers
`stored: false`, a tag move records when as given, and who as the token that asked:
the `by` a request sends is not kept); the caller has already
applied the rules the CLI applies (`kitaru.stacks.register` checks settings and secret
references before it stores). People and scripts use the checked routes instead:
/api/v1/stacks, /api/v1/settings, /api/v1/deployments/{flow}/tags. Admin tokens only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kitaru.journal import StackRecord
from kitaru.server._wire import Count, Number, Stack, Text, to_record
from kitaru.server.routes._deps import Admin, State, who
from kitaru.server.routes._records import _json

router = APIRouter(prefix="/api/v1/records", tags=["records"])

_STRICT = ConfigDict(extra="forbid", strict=True)


class PutStackRequest(BaseModel):
    model_config = _STRICT
    stack: Stack
    replace: bool = False


class SettingRequest(BaseModel):
    model_config = _STRICT
    value: Annotated[str, Field(max_length=1000)] | None


class TagRequest(BaseModel):
    model_config = _STRICT
    version: Count
    weight: Count | None = None
    by: Text
    now: Number


class ChangeRequest(BaseModel):
    model_config = _STRICT
    by: Text = ""
    now: Number


@router.put("/stacks/{name}", summary="Store a stack record (false: the name is taken)")
def put_stack(name: str, body: PutStackRequest, state: State, caller: Admin) -> dict[str, bool]:
    stack: StackRecord = to_record(StackRecord, body.stack)
    if stack.name != name:
        from kitaru._errors import InvalidInputError

        raise InvalidInputError(f"the stack is named {stack.name!r}, not {name!r}")
    return {"stored": state.journal.put_stack(stack, replace=body.replace)}


@router.delete("/stacks/{name}", summary="Delete a stack record")
def delete_stack(name: str, state: State, caller: Admin) -> dict[str, bool]:
    return {"deleted": state.journal.delete_stack(name)}


@router.put("/settings/{key}", summary="Store a setting (null removes it)")
def set_setting(key: str, body: SettingRequest, state: State, caller: Admin) -> dict[str, bool]:
    state.journal.set_setting(key, body.value)
    return {"stored": True}


@router.put("/deployments/{flow}/tags/{tag}", summary="Point a tag at a version")
def set_tag(flow: str, tag: str, body: TagRequest, state: State, caller: Admin) -> object:
    moved = state.journal.set_tag(
        flow, tag, body.version, weight=body.weight, by=who(state, caller), now=body.now
    )
    return _json(moved)


@router.post("/deployments/{flow}/tags/{tag}/remove", summary="Remove a tag")
def remove_tag(
    flow: str, tag: str, body: ChangeRequest, state: State, caller: Admin
) -> dict[str, bool]:
    return {"removed": state.journal.remove_tag(flow, tag, by=who(state, caller), now=body.now)}


@router.post("/deployments/{flow}/{version}/delete", summary="Mark a version deleted")
def delete_deployment(
    flow: str, version: int, body: ChangeRequest, state: State, caller: Admin
) -> dict[str, bool]:
    return {"deleted": state.journal.delete_deployment(flow, version, now=body.now)}
