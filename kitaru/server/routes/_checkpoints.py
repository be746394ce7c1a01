"""Checkpoint calls of an execution: the timeline, one call with its logs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from kitaru import _control, _views
from kitaru._errors import NotFoundError
from kitaru.server.routes._deps import Reader, State

router = APIRouter(prefix="/api/v1/executions", tags=["checkpoints"])


@router.get("/{exec_id}/checkpoints", summary="Checkpoint calls in the order they ran")
def list_calls(exec_id: str, state: State, caller: Reader) -> list[dict[str, Any]]:
    record = _control.get_execution(state.journal, exec_id)
    return [_views.call_view(c, record.runs) for c in state.journal.calls(exec_id)]


@router.get("/{exec_id}/checkpoints/{key:path}", summary="One checkpoint call, with its logs")
def get_call(exec_id: str, key: str, state: State, caller: Reader) -> dict[str, Any]:
    record = _control.get_execution(state.journal, exec_id)
    calls = state.journal.calls(exec_id)
    found = next((c for c in calls if c.key == key), None)
    if found is None:
        keys = ", ".join(c.key for c in calls) or "none"
        raise NotFoundError(
            f"execution {exec_id} has no checkpoint {key!r}; its checkpoints: {keys}"
        )
    view = _views.call_view(found, record.runs)
    view["traceback"] = found.traceback
    view["logs"] = [
        {"run": g.run, "ts": _views.iso(g.ts), "stream": g.stream, "text": g.text}
        for g in state.journal.logs(exec_id)
        if g.call_key == key
    ]
    return view
