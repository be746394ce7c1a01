"""Stacks and the flavors they are made of: the same rules and JSON as `kitaru stack`.

Registering validates what the server can judge alone: the flavor's settings schema,
secrets only as references, the URIs, the plugins it needs. It does not connect to the
journal, bucket, registry or platform a stack names: the server would do so from its
own network with its own credentials, which says little about where executions run
(`kitaru stack register` with KITARU_SERVER_URL checks them from the caller's machine).

The active stack here is the one chosen for everyone who shares the journal (`kitaru
stack use`, or activate below); a client's KITARU_STACK still wins on that client.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kitaru import stacks
from kitaru._errors import InvalidInputError
from kitaru.server.routes._deps import Admin, Reader, State
from kitaru.stacks._resolve import ACTIVE_SETTING

router = APIRouter(prefix="/api/v1", tags=["stacks"])


class StackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Stack name: lowercase letters, digits, - and _.")
    orchestrator: str = Field(description="The flavor (GET /api/v1/flavors lists them).")
    artifact_store: str = Field(description="s3://bucket/prefix, gs://..., az://..., file:///")
    journal: str | None = Field(
        None,
        description="Journal URL for executions on the stack (postgresql://user@host/db, or "
        "env:VAR holding it); default: this server's journal.",
    )
    registry: str | None = Field(None, description="Container registry: host[:port]/path.")
    builder: str | None = Field(None, description="Builder flavor; default: the flavor's own.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="The flavor's settings (its settings_schema); secrets only as references, "
        "env:VAR_NAME or secret:NAME.",
    )
    replace: bool = Field(False, description="Overwrite a stack of this name.")


@router.get("/stacks", summary="Every stack, the built-in local one first; the active is marked")
def list_stacks(state: State, caller: Reader) -> list[dict[str, Any]]:
    active = stacks.chosen_name(state.journal)
    return [stacks.describe(s, active=active) for s in stacks.list_stacks(state.journal)]


@router.get("/stacks/{name}", summary="One stack: its components and every setting")
def show(name: str, state: State, caller: Reader) -> dict[str, Any]:
    record = stacks.get_stack(state.journal, name)
    return stacks.describe(record, active=stacks.chosen_name(state.journal))


@router.post(
    "/stacks",
    status_code=201,
    summary="Register a stack (422 with the reason for input that cannot work, 409 for a "
    "name that is taken unless replace)",
)
def register(body: StackRequest, state: State, caller: Admin) -> dict[str, Any]:
    record = stacks.register(
        state.journal,
        body.name,
        orchestrator=body.orchestrator,
        artifact_store=body.artifact_store,
        journal_url=body.journal,
        registry=body.registry,
        builder=body.builder,
        settings=body.settings,
        replace=body.replace,
        check=False,
    )
    return stacks.describe(record, active=stacks.chosen_name(state.journal))


@router.delete(
    "/stacks/{name}",
    summary="Delete a stack; refused for local and while executions on it are unfinished "
    "(unless force). Deleting the active stack makes local active.",
)
def delete(name: str, state: State, caller: Admin, force: bool = False) -> dict[str, Any]:
    stacks.delete(state.journal, name, force=force)
    return {"deleted": name}


@router.post("/stacks/{name}/activate", summary="Make a stack the active one for new executions")
def activate(name: str, state: State, caller: Admin) -> dict[str, Any]:
    return stacks.describe(stacks.use(state.journal, name), active=name)


class SettingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    value: str | None = Field(max_length=200, description="The new value; null removes it.")


@router.put("/settings/{key}", summary="Change a shared setting (the active stack)")
def set_setting(key: str, body: SettingRequest, state: State, caller: Admin) -> dict[str, Any]:
    if key != ACTIVE_SETTING:
        raise InvalidInputError(f"unknown setting {key!r}; the settings are: {ACTIVE_SETTING}")
    if body.value is not None:
        stacks.get_stack(state.journal, body.value)
    state.journal.set_setting(key, body.value)
    return {"key": key, "value": body.value}


@router.get("/flavors", summary="Installed orchestrator flavors with their settings schemas")
def flavors(caller: Reader) -> list[dict[str, Any]]:
    return [stacks.describe_flavor(name) for name in stacks.installed_flavors()]


@router.get(
    "/flavors/{name}",
    summary="One flavor, with the settings of its infrastructure program (kitaru stack "
    "provision) if one is installed",
)
def flavor(name: str, caller: Reader) -> dict[str, Any]:
    return stacks.describe_flavor(name, infrastructure=True)
