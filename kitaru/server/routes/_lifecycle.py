"""Creating executions and moving them between statuses: what a client that starts,
submits, replays or cancels executions does through the server (write tokens).

These are the journal's own operations, typed: `HttpJournal` calls them where a local
journal would run the same method. The actions people call (resume, replay, input,
cancel in kitaru/server/routes/_executions.py) are built on the same journal methods
inside the server.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from kitaru import _idempotency, _lease
from kitaru._errors import InvalidInputError, KitaruUsageError, LeaseError, NotFoundError
from kitaru.journal import ArtifactRecord, ExecutionRecord, Journal
from kitaru.server import _owners
from kitaru.server._state import ServerState
from kitaru.server._wire import Artifact, Execution, Id, Number, Text, to_record
from kitaru.server.routes._deps import State, Writer

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

_STRICT = ConfigDict(extra="forbid", strict=True)
Owner = Annotated[str, Field(min_length=1, max_length=300)]
# What an execution can be moved from: never one that has completed or was cancelled.
Unfinished = Literal["queued", "running", "waiting", "failed"]


class CreateRequest(BaseModel):
    model_config = _STRICT
    execution: Execution
    inputs: Annotated[list[Artifact], Field(max_length=1000)] = []


class TransitionRequest(BaseModel):
    model_config = _STRICT
    to: Literal["queued", "failed"] = Field(
        description="queued before a submit; failed when its run never started it."
    )
    from_statuses: Annotated[list[Unfinished], Field(min_length=1, max_length=4)]
    expected_owner: Owner | None
    now: Number
    error: Annotated[str, Field(max_length=256 * 1024)] | None = None


class RunRequest(BaseModel):
    model_config = _STRICT
    run_id: Annotated[str, Field(min_length=1, max_length=1000)]
    orchestrator: Text


class CancelRequest(BaseModel):
    model_config = _STRICT
    now: Number


class CancelIdleRequest(BaseModel):
    model_config = _STRICT
    expected_owner: Owner | None
    now: Number


class CopyRequest(BaseModel):
    model_config = _STRICT
    source: Id
    before_seq: Annotated[int, Field(ge=0, le=2**53)]
    overridden: Annotated[list[Text], Field(max_length=1000)] = []


def _current(journal: Journal, exec_id: str) -> ExecutionRecord:
    record = journal.get_execution(exec_id)
    if record is None:
        raise NotFoundError(f"execution {exec_id} not found")
    return record


def _expected_owner(state: ServerState, given: str | None, current: ExecutionRecord) -> str | None:
    """The owner a compare-and-swap on `current` expects. A caller that presents the
    masked owner of a running execution (anyone who can read it) may move it only once
    its process has stopped or its lease has expired, as with the lease route; the
    process that runs it presents its real owner token and may always give it back."""
    expected = _owners.expected(state.secret, given, current.owner)
    if (
        current.status == "running"
        and current.owner is not None
        and expected == current.owner
        and given != current.owner
        and _lease.owner_alive(current.owner, current.lease_until, time.time())
    ):
        raise LeaseError(
            f"execution {current.exec_id} is running and its lease is live; it can be "
            "moved once its process has stopped or its lease has expired (to stop it, "
            f"cancel it: kitaru executions cancel {current.exec_id})"
        )
    return expected


@router.post("", status_code=201, summary="Record a new execution and its input artifacts")
def create(body: CreateRequest, state: State, caller: Writer) -> dict[str, str]:
    record: ExecutionRecord = to_record(ExecutionRecord, body.execution)
    if record.worker is not None or record.claimed_at is not None:
        # Only a claim says a worker took it: queue limits count these.
        raise InvalidInputError(
            f"execution {record.exec_id} says a worker claimed it (worker, claimed_at); a "
            "new execution is claimed by a worker through /api/v1/runner/claim"
        )
    _idempotency.check_key(record.idempotency_key)
    inputs = [to_record(ArtifactRecord, a) for a in body.inputs]
    for artifact in inputs:
        if artifact.exec_id != record.exec_id or artifact.producer != "input":
            raise InvalidInputError(
                f"input artifact {artifact.artifact_id} is not an input of {record.exec_id}"
            )
        if artifact.serializer == "pickle":
            raise InvalidInputError(
                f"flow input {artifact.name!r} is pickled; inputs sent to a server are JSON "
                "(pass JSON-compatible data, a pydantic model or a dataclass)"
            )
    if state.journal.get_execution(record.exec_id) is not None:
        raise KitaruUsageError(f"execution {record.exec_id} exists already")
    # With an idempotency key already taken for the flow: the execution holding it.
    return {"exec_id": state.journal.create_execution(record, inputs)}


@router.post("/{exec_id}/transition", summary="Move an execution nobody runs to queued or failed")
def transition(
    exec_id: str, body: TransitionRequest, state: State, caller: Writer
) -> dict[str, bool]:
    current = _current(state.journal, exec_id)
    done = state.journal.transition(
        exec_id,
        to=body.to,
        from_statuses=body.from_statuses,
        expected_owner=_expected_owner(state, body.expected_owner, current),
        now=body.now,
        error=body.error,
    )
    return {"moved": done}


@router.put("/{exec_id}/run", summary="Record the orchestrator run that executes it")
def set_run(exec_id: str, body: RunRequest, state: State, caller: Writer) -> dict[str, str]:
    _current(state.journal, exec_id)
    state.journal.set_run_id(exec_id, body.run_id, body.orchestrator)
    return {"run_id": body.run_id}


@router.post("/{exec_id}/cancel-request", summary="Ask a running execution to stop")
def request_cancel(
    exec_id: str, body: CancelRequest, state: State, caller: Writer
) -> dict[str, bool]:
    _current(state.journal, exec_id)
    state.journal.request_cancel(exec_id, now=body.now)
    return {"requested": True}


@router.post("/{exec_id}/cancel-idle", summary="Cancel an execution that is not running")
def cancel_idle(
    exec_id: str, body: CancelIdleRequest, state: State, caller: Writer
) -> dict[str, bool]:
    current = _current(state.journal, exec_id)
    done = state.journal.cancel_idle(
        exec_id,
        expected_owner=_expected_owner(state, body.expected_owner, current),
        now=body.now,
    )
    return {"cancelled": done}


@router.post("/{exec_id}/copy-calls", summary="Replay: reuse the source's calls before a position")
def copy_calls(exec_id: str, body: CopyRequest, state: State, caller: Writer) -> dict[str, int]:
    _current(state.journal, exec_id)
    _current(state.journal, body.source)
    copied = state.journal.copy_calls(
        body.source, exec_id, before_seq=body.before_seq, overridden=body.overridden
    )
    return {"copied": copied}


@router.post(
    "/{exec_id}/copy-waits", summary="Replay: reuse the source's answers before a position"
)
def copy_waits(exec_id: str, body: CopyRequest, state: State, caller: Writer) -> dict[str, int]:
    _current(state.journal, exec_id)
    _current(state.journal, body.source)
    return {"copied": state.journal.copy_waits(body.source, exec_id, before_seq=body.before_seq)}
