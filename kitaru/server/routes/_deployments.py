"""Deployments: versions, tags, the tag history, and invoking a deployed version.

Deploying builds an image from a project on disk, so it stays on the machine that has
the project (`kitaru deploy`); everything after it works here. Invoking needs no code
either: the deployed image runs on its stack's orchestrator, started by the server.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from kitaru import deployments
from kitaru._errors import NotFoundError
from kitaru.client import Executions
from kitaru.server.routes._deps import Reader, State, Writer

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
def tag(flow: str, tag: str, body: TagRequest, state: State, caller: Writer) -> dict[str, Any]:
    deployments.check_tag(tag)
    moved = state.journal.set_tag(
        flow, tag, body.version, weight=body.weight, by=f"token {caller.token_id}", now=time.time()
    )
    return deployments.tag_view(moved)


@router.delete("/{flow}/tags/{tag}", summary="Remove a tag (recorded in the history)")
def untag(flow: str, tag: str, state: State, caller: Writer) -> dict[str, Any]:
    before = state.journal.get_tag(flow, tag)
    if before is None or not state.journal.remove_tag(
        flow, tag, by=f"token {caller.token_id}", now=time.time()
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
    flow: str, body: InvokeRequest, request: Request, state: State, caller: Writer
) -> dict[str, Any]:
    handle = deployments.invoke(
        flow,
        args=body.args,
        kwargs=body.kwargs,
        tag=body.tag,
        version=body.version,
        invocation_id=body.invocation_id,
        journal=state.journal,
        # The container reports to this server (with a token minted for its run), at
        # the address the caller reached it by, as a client's containers do.
        server_url=(state.config.public_url or str(request.base_url)).rstrip("/"),
    )
    return Executions(handle._journal or state.journal).get(handle.exec_id).to_dict()
