"""Executions: list, get, logs, lineage, and the actions resume, cancel, replay, input."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from kitaru import _control
from kitaru.client import Executions
from kitaru.server import _actions
from kitaru.server.routes._deps import Reader, State, Writer

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

STATUSES = ("queued", "running", "waiting", "completed", "failed", "crashed", "cancelled")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: str = Field(alias="from", description="Checkpoint key to run again from (draft#2).")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Checkpoint key -> value to use as its output."
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Flow parameter -> value replacing the argument."
    )


class InputRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wait: str = Field(description="Wait name or key (approve, approve#2).")
    value: Any = Field(description="The answer, checked against the wait's schema.")
    resume: Annotated[bool, Field(description="Resume the execution after the answer.")] = True


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace: Annotated[
        float, Field(ge=0, le=300, description="Seconds a running execution gets to stop.")
    ] = 10.0


def _view(state: State, exec_id: str) -> dict[str, Any]:
    return Executions(state.journal).get(exec_id).to_dict()


@router.get("", summary="List executions, newest first")
def list_executions(
    state: State,
    caller: Reader,
    flow: str | None = None,
    status: Annotated[str | None, Query(description=", ".join(STATUSES))] = None,
    replayed_from: str | None = None,
    idempotency_key: Annotated[
        str | None, Query(max_length=200, description="The execution a start with it made.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        from kitaru._errors import InvalidInputError

        raise InvalidInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    if replayed_from is not None:
        from kitaru import _views

        records = state.journal.list_executions(replayed_from=replayed_from, limit=limit)
        return [_views.execution_view(state.journal, r, detail=False) for r in records]
    found = Executions(state.journal).list(
        flow=flow, status=status, idempotency_key=idempotency_key, limit=limit
    )
    return [e.to_dict() for e in found]


@router.get("/{exec_id}", summary="An execution with its checkpoint calls, waits and result")
def get_execution(exec_id: str, state: State, caller: Reader) -> JSONResponse:
    # The view is plain JSON already: skip response-model validation on the hot path.
    return JSONResponse(_view(state, exec_id))


@router.get("/{exec_id}/logs", summary="What the execution printed and logged, per call")
def logs(
    exec_id: str, state: State, caller: Reader, checkpoint: str | None = None
) -> list[dict[str, Any]]:
    lines = Executions(state.journal).logs(exec_id)
    if checkpoint is not None:
        lines = [g for g in lines if g["checkpoint"] == checkpoint]
    return lines


@router.get("/{exec_id}/lineage", summary="The replays this execution came from and led to")
def lineage(exec_id: str, state: State, caller: Reader) -> dict[str, Any]:
    from kitaru import _views

    journal = state.journal
    record = _control.get_execution(journal, exec_id)
    ancestors: list[dict[str, Any]] = []
    seen = {record.exec_id}
    parent_id = record.replayed_from
    while parent_id and parent_id not in seen and len(ancestors) < 100:
        seen.add(parent_id)
        parent = journal.get_execution(parent_id)
        if parent is None:
            break
        ancestors.append(_views.execution_view(journal, parent, detail=False))
        parent_id = parent.replayed_from
    replays = [
        _views.execution_view(journal, r, detail=False)
        for r in journal.list_executions(replayed_from=exec_id, limit=1000)
    ]
    return {"exec_id": exec_id, "ancestors": ancestors, "replays": replays}


@router.post(
    "/{exec_id}/resume",
    status_code=202,
    summary="Resume a crashed, failed or waiting execution where it runs: its orchestrator, "
    "or (local stack) queued, ready for `kitaru executions resume` where its code lives",
)
def resume(exec_id: str, state: State, caller: Writer) -> dict[str, Any]:
    _actions.resume(state.journal, exec_id, server_url=state.config.public_url)
    return _view(state, exec_id)


@router.post("/{exec_id}/cancel", summary="Cancel a running, waiting or crashed execution")
def cancel(
    exec_id: str, state: State, caller: Writer, body: CancelRequest | None = None
) -> dict[str, Any]:
    _actions.cancel(state.journal, exec_id, (body or CancelRequest()).grace)
    return _view(state, exec_id)


@router.post(
    "/{exec_id}/replay",
    status_code=202,
    summary="Start a new execution that reuses this one's outputs before a checkpoint",
)
def replay(exec_id: str, body: ReplayRequest, state: State, caller: Writer) -> dict[str, Any]:
    record = _actions.replay(
        state.journal,
        exec_id,
        from_=body.from_,
        overrides=body.overrides,
        inputs=body.inputs,
        server_url=state.config.public_url,
    )
    return _view(state, record.exec_id)


@router.post(
    "/{exec_id}/input",
    status_code=202,
    summary="Answer a pending wait (checked against its schema) and resume",
)
def give_input(exec_id: str, body: InputRequest, state: State, caller: Writer) -> dict[str, Any]:
    _actions.answer(
        state.journal,
        exec_id,
        body.wait,
        body.value,
        resume=body.resume,
        server_url=state.config.public_url,
    )
    return _view(state, exec_id)
