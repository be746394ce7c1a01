"""Journal records as they are stored, for clients that keep a journal's view of them
(`HttpJournal`: the CLI, `KitaruClient` and flows with KITARU_SERVER_URL).

Every route is a GET; each answer is the record (or list of records) as JSON, one member
per dataclass field (kitaru/_codec.py), or `null` for a record that does not exist.
Lease owners are masked (kitaru/server/_owners.py). A run token reads its own
execution's records, and the artifacts of the executions it replays.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from kitaru.journal import ExecutionRecord, Journal
from kitaru.remote._codec import to_wire
from kitaru.server import _owners
from kitaru.server._wire import STATUSES
from kitaru.server.routes._deps import RUN_TOKEN, AnyToken, OfExecution, Reader, State

router = APIRouter(prefix="/api/v1/records", tags=["records"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def _json(value: Any) -> JSONResponse:
    return JSONResponse(to_wire(value))


def _execution(state: State, record: ExecutionRecord | None) -> JSONResponse:
    return _json(None if record is None else _owners.masked(state.secret, record))


@router.get("/executions", summary="Execution records, newest first")
def list_executions(
    state: State,
    caller: Reader,
    flow: str | None = None,
    status: str | None = None,
    replayed_from: str | None = None,
    idempotency_key: str | None = None,
    limit: Limit = 100,
) -> JSONResponse:
    if status is not None and status not in STATUSES:
        from kitaru._errors import InvalidInputError

        raise InvalidInputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    found = state.journal.list_executions(
        flow=flow,
        status=status,
        replayed_from=replayed_from,
        idempotency_key=idempotency_key,
        limit=limit,
    )
    return _json([_owners.masked(state.secret, r) for r in found])


@router.get("/executions/{exec_id}", summary="One execution record")
def get_execution(exec_id: str, state: State, caller: OfExecution) -> JSONResponse:
    return _execution(state, state.journal.get_execution(exec_id))


@router.get("/executions/{exec_id}/calls", summary="Its checkpoint calls, with their outputs")
def calls(exec_id: str, state: State, caller: OfExecution) -> JSONResponse:
    return _json(state.journal.calls(exec_id))


@router.get("/executions/{exec_id}/artifacts", summary="Its artifacts (without inline bytes)")
def list_artifacts(
    exec_id: str, state: State, caller: OfExecution, producer: str | None = None
) -> JSONResponse:
    return _json(state.journal.list_artifacts(exec_id, producer=producer))


@router.get(
    "/executions/{exec_id}/artifacts/named/{name}",
    summary="The newest version of a named artifact",
)
def find_artifact(exec_id: str, name: str, state: State, caller: OfExecution) -> JSONResponse:
    return _json(state.journal.find_artifact(exec_id, name))


@router.get("/executions/{exec_id}/waits", summary="Its waits")
def waits(exec_id: str, state: State, caller: OfExecution) -> JSONResponse:
    return _json(state.journal.waits(exec_id))


@router.get("/executions/{exec_id}/logs", summary="Its log lines")
def logs(exec_id: str, state: State, caller: OfExecution) -> JSONResponse:
    return _json(state.journal.logs(exec_id))


@router.get(
    "/executions/{exec_id}/events",
    summary="Its live feed after entry `after`, in order (see also GET /api/v1/executions/{id}/events)",
)
def events(
    exec_id: str,
    state: State,
    caller: OfExecution,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 1000,
) -> JSONResponse:
    return _json(state.journal.events(exec_id, after=after, limit=limit))


@router.get("/artifacts/{artifact_id}", summary="One artifact record, with inline bytes")
def get_artifact(artifact_id: str, state: State, caller: AnyToken) -> JSONResponse:
    found = state.journal.get_artifact(artifact_id)
    run = caller.execution
    if found is not None and run is not None and found.exec_id not in lineage(state.journal, run):
        raise HTTPException(403, RUN_TOKEN.format(execution=caller.execution))
    return _json(found)


def lineage(journal: Journal, exec_id: str) -> set[str]:
    """The execution and those it replays (a replay reuses their outputs)."""
    found = {exec_id}
    record = journal.get_execution(exec_id)
    while record is not None and record.replayed_from and len(found) < 100:
        if record.replayed_from in found:
            break
        found.add(record.replayed_from)
        record = journal.get_execution(record.replayed_from)
    return found


@router.get("/waits", summary="Pending waits across executions")
def pending_waits(state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.pending_waits())


@router.get("/stacks", summary="Stack records by name")
def list_stacks(state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.list_stacks())


@router.get("/stacks/{name}", summary="One stack record")
def get_stack(name: str, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.get_stack(name))


@router.get("/settings/{key}", summary="One setting (the active stack)")
def get_setting(key: str, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.get_setting(key))


@router.get("/deployments", summary="Deployment records, newest first")
def list_deployments(state: State, caller: Reader, flow: str | None = None) -> JSONResponse:
    return _json(state.journal.list_deployments(flow))


@router.get("/deployments/{flow}/tags", summary="A flow's tags")
def list_tags(flow: str, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.list_tags(flow))


@router.get("/deployments/{flow}/tags/{tag}", summary="One tag")
def get_tag(flow: str, tag: str, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.get_tag(flow, tag))


@router.get("/deployments/{flow}/history", summary="Every tag change of a flow")
def tag_history(flow: str, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.tag_history(flow))


@router.get("/deployments/{flow}/{version}", summary="One deployment version, with its manifest")
def get_deployment(flow: str, version: int, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.get_deployment(flow, version))
