"""Deployments: versions, tags, the tag history, and invoking a deployed version.

Deploying builds an image from a project on disk, so it stays on the machine that has
the project (`kitaru deploy`); everything after it works here. Invoking needs no code
either: the deployed image runs on its stack's orchestrator, started by the server.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from kitaru import deployments
from kitaru._errors import InvalidInputError, KitaruUsageError, NotFoundError
from kitaru.client import Executions
from kitaru.journal import DeploymentRecord
from kitaru.server._wire import Deployment, Number, to_record
from kitaru.server.routes._deps import Admin, Reader, State, Writer, who

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])


class TagRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = Field(description="The version the tag points at.")
    weight: Annotated[
        int | None,
        Field(
            ge=1,
            le=99,
            description="Canary: percent of the tag's invocations this version takes; the "
            "rest stay on the version the tag served. Leave out to send it everything.",
        ),
    ] = None


class InvokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tag: str | None = Field(None, description="Run the version this tag picks (default).")
    version: int | None = Field(None, description="Run this version instead of a tag's.")
    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")
    invocation_id: str | None = Field(
        None,
        description="Your id for the invocation; a retry with the same id picks the same "
        "version of a canary. Default: a new one.",
    )
    queue: str | None = Field(
        None,
        description="Put the execution in this queue for a worker whose code is the "
        "version's snapshot, instead of starting it on the stack's orchestrator.",
    )
    priority: int = Field(0, ge=-1_000_000, le=1_000_000, description="Within the queue.")
    idempotency_key: str | None = Field(
        None,
        max_length=200,
        description="A name for this start (a webhook delivery id): invoking the flow again "
        "with the key starts nothing and answers with the execution the first invocation "
        "started (`reused`: true). The `Idempotency-Key` header does the same.",
    )


class DeploymentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    deployment: Deployment
    tag: str | None = Field(None, max_length=100, description="Point this tag at the new version.")


class DeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    now: Number | None = None


@router.post(
    "",
    status_code=201,
    summary="Record a deployed version (what `kitaru deploy` does after building its image); "
    "the journal numbers it",
)
def create(body: DeploymentRequest, state: State, caller: Writer) -> dict[str, Any]:
    record: DeploymentRecord = to_record(DeploymentRecord, body.deployment)
    record = dataclasses.replace(record, created_by=who(state, caller))
    if body.tag is not None:
        deployments.check_tag(body.tag)
        if not caller.is_admin and state.journal.get_tag(record.flow, body.tag) is not None:
            # Moving a tag changes what every invocation by it runs: an admin's change.
            raise HTTPException(
                403,
                deployments.tag_taken(record.flow, body.tag),
            )
    created = state.journal.create_deployment(record, tag=body.tag)
    return {"flow": created.flow, "version": created.version, "created_by": created.created_by}


@router.delete(
    "/{flow}/{version}",
    summary="Delete a version (refused while a tag points at it)",
)
def delete(flow: str, version: int, state: State, caller: Admin) -> dict[str, Any]:
    if not state.journal.delete_deployment(flow, version, now=time.time()):
        raise KitaruUsageError(
            f"version {version} of {flow!r} is missing, deleted already, or a tag points at it"
        )
    return {"flow": flow, "deleted": version}


@router.get("", summary="Deployed versions (of one flow, or every flow), newest first")
def list_deployments(state: State, caller: Reader, flow: str | None = None) -> list[dict[str, Any]]:
    records = state.journal.list_deployments(flow)
    tags = {f: state.journal.list_tags(f) for f in {d.flow for d in records}}
    return [deployments.deployment_view(d, tags[d.flow]) for d in records]


@router.get("/{flow}/history", summary="Every tag change of the flow, oldest first")
def history(flow: str, state: State, caller: Reader) -> list[dict[str, Any]]:
    return [deployments.event_view(e) for e in state.journal.tag_history(flow)]


@router.get("/{flow}/tags", summary="The flow's tags and the versions they route to")
def tags(flow: str, state: State, caller: Reader) -> list[dict[str, Any]]:
    return [deployments.tag_view(t) for t in state.journal.list_tags(flow)]


@router.get("/{flow}/{version}", summary="One version: image, hashes, signature, tags")
def show(flow: str, version: int, state: State, caller: Reader) -> dict[str, Any]:
    record = deployments.live_deployment(state.journal, flow, version)
    return deployments.deployment_view(record, state.journal.list_tags(flow), detail=True)


@router.put(
    "/{flow}/tags/{tag}",
    summary="Point a tag at a version, atomically (a canary with a weight); rolling back "
    "is pointing it at an earlier version",
)
def tag(flow: str, tag: str, body: TagRequest, state: State, caller: Admin) -> dict[str, Any]:
    deployments.check_tag(tag)
    moved = state.journal.set_tag(
        flow, tag, body.version, weight=body.weight, by=who(state, caller), now=time.time()
    )
    return deployments.tag_view(moved)


@router.delete("/{flow}/tags/{tag}", summary="Remove a tag (recorded in the history)")
def untag(flow: str, tag: str, state: State, caller: Admin) -> dict[str, Any]:
    before = state.journal.get_tag(flow, tag)
    if before is None or not state.journal.remove_tag(
        flow, tag, by=who(state, caller), now=time.time()
    ):
        names = [t.tag for t in state.journal.list_tags(flow)]
        raise NotFoundError(f"flow {flow!r} has no tag {tag!r}; tags: {', '.join(names) or 'none'}")
    return {"flow": flow, "removed": deployments.tag_view(before)}


@router.post(
    "/{flow}/invoke",
    status_code=202,
    summary="Run the version a tag picks (or a given version) in its image on its stack",
)
def invoke(
    flow: str,
    body: InvokeRequest,
    state: State,
    caller: Writer,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    key = _one_key(body.idempotency_key, idempotency_key)
    if state.config.public_url is None and body.queue is None:
        raise KitaruUsageError(
            "this server does not know its own address, so the container it would start "
            "could not report back; restart it with --public-url URL"
        )
    handle = deployments.invoke(
        flow,
        args=body.args,
        kwargs=body.kwargs,
        tag=body.tag,
        version=body.version,
        invocation_id=body.invocation_id,
        journal=state.journal,
        # The container reports to this server (with a token minted for its run), at the
        # address the server was configured with: never one a request or record names.
        server_url=state.config.public_url,
        refuse_local=True,
        queue=body.queue,
        priority=body.priority,
        idempotency_key=key,
    )
    view = Executions(handle._journal or state.journal).get(handle.exec_id).to_dict()
    view["reused"] = handle.reused
    return view


def _one_key(in_body: str | None, in_header: str | None) -> str | None:
    if in_body is not None and in_header is not None and in_body != in_header:
        raise InvalidInputError(
            "the Idempotency-Key header and the body's idempotency_key differ; give one"
        )
    return in_body if in_body is not None else in_header
