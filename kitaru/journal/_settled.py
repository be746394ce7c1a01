"""Did a write whose acknowledgement was lost happen? One check per write that is not
idempotent as written, run before `kitaru/journal/_retry.py` runs the write again.

Each reads the row the write would have changed and recognises the write by values
only it puts there: the call's key, status and end time at its row number; an
execution's owner token (unique per process) or `updated_at` equal to the write's own
`now`. A check answers what the write would have answered, or `UNSETTLED`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    LogRecord,
    WaitRecord,
)
from kitaru.journal._retry import UNSETTLED

if TYPE_CHECKING:
    from kitaru.journal._sql import SqlJournal


def commit_call(
    j: SqlJournal,
    call: CallRecord,
    output: ArtifactRecord | None,
    logs: Sequence[LogRecord],
    *,
    owner: str,
) -> Any:
    row = j._x(
        "SELECT key, status, ended_at, attempts FROM calls WHERE exec_id = ? AND seq = ?",
        (call.exec_id, call.seq),
    ).fetchone()
    if row is not None and tuple(row) == (call.key, call.status, call.ended_at, call.attempts):
        return True
    return UNSETTLED


def take_lease(j: SqlJournal, exec_id: str, *, owner: str, **_: Any) -> Any:
    record = j.get_execution(exec_id)
    if record is not None and record.owner == owner and record.status == "running":
        return True
    return UNSETTLED


def finish(j: SqlJournal, exec_id: str, *, status: str, now: float, **_: Any) -> Any:
    record = j.get_execution(exec_id)
    if (
        record is not None
        and record.owner is None
        and record.status == status
        and record.updated_at == now
    ):
        return True
    return UNSETTLED


def transition(j: SqlJournal, exec_id: str, *, to: str, now: float, **_: Any) -> Any:
    record = j.get_execution(exec_id)
    if record is not None and record.status == to and record.updated_at == now:
        return True
    return UNSETTLED


def cancel_idle(j: SqlJournal, exec_id: str, *, now: float, **_: Any) -> Any:
    return transition(j, exec_id, to="cancelled", now=now)


def create_execution(j: SqlJournal, execution: Any, inputs: Any) -> Any:
    # Landed under its own id; else sent again (an idempotency key another start holds
    # then answers with the holder's id, as the first send would have).
    return execution.exec_id if j.get_execution(execution.exec_id) is not None else UNSETTLED


def copy_calls(j: SqlJournal, source: str, target: str, *, before_seq: int, **_: Any) -> Any:
    # A replay's calls are copied in one transaction, before the replay runs anything: a
    # copied row in the target means the copy landed.
    row = j._x(
        "SELECT COUNT(*) FROM calls WHERE exec_id = ? AND seq < ? AND reused_from IS NOT NULL",
        (target, before_seq),
    ).fetchone()
    return int(row[0]) if row[0] else UNSETTLED


def copy_waits(j: SqlJournal, source: str, target: str, *, before_seq: int) -> Any:
    row = j._x(
        "SELECT COUNT(*) FROM waits WHERE exec_id = ? AND seq < ? AND status = 'answered'",
        (target, before_seq),
    ).fetchone()
    return int(row[0]) if row[0] else UNSETTLED


def put_artifact(j: SqlJournal, artifact: ArtifactRecord) -> Any:
    return None if j.get_artifact(artifact.artifact_id) is not None else UNSETTLED


def create_wait(j: SqlJournal, wait: WaitRecord, *, owner: str) -> Any:
    row = j._x(
        "SELECT created_at FROM waits WHERE exec_id = ? AND key = ?", (wait.exec_id, wait.key)
    ).fetchone()
    return True if row is not None and row[0] == wait.created_at else UNSETTLED


def answer_wait(j: SqlJournal, exec_id: str, key: str, value: ArtifactRecord, **_: Any) -> Any:
    row = j._x(
        "SELECT value_artifact FROM waits WHERE exec_id = ? AND key = ?", (exec_id, key)
    ).fetchone()
    return True if row is not None and row[0] == value.artifact_id else UNSETTLED


def append_logs(j: SqlJournal, logs: Sequence[LogRecord]) -> Any:
    if not logs:
        return None
    g = logs[0]
    row = j._x(
        "SELECT 1 FROM logs WHERE exec_id = ? AND ts = ? AND stream = ? AND text = ?",
        (g.exec_id, g.ts, g.stream, g.text),
    ).fetchone()
    return None if row is not None else UNSETTLED


def append_events(
    j: SqlJournal, exec_id: str, events: Sequence[EventRecord], *, owner: str, again: bool = False
) -> Any:
    if again:
        return UNSETTLED  # sent again, the write itself leaves out what is stored
    if not events:
        return True
    e = events[0]
    row = j._x(
        "SELECT 1 FROM events WHERE exec_id = ? AND run = ? AND ts = ? AND kind = ?",
        (exec_id, e.run, e.ts, e.kind),
    ).fetchone()
    return True if row is not None else UNSETTLED


CHECKS: dict[str, Callable[..., Any]] = {
    "commit_call": commit_call,
    "take_lease": take_lease,
    "finish": finish,
    "transition": transition,
    "cancel_idle": cancel_idle,
    "create_execution": create_execution,
    "copy_calls": copy_calls,
    "copy_waits": copy_waits,
    "put_artifact": put_artifact,
    "create_wait": create_wait,
    "answer_wait": answer_wait,
    "append_logs": append_logs,
    "append_events": append_events,
}
