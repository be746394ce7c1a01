"""Restarts: an execution whose container or job died without finishing it is submitted
again, up to the stack's `max_restarts` times, and resumes from its last committed
checkpoint like any resume (checkpoints already committed are replayed, not run).

The protocol, in the order it happens:

1. A run dies: its container is killed (preempted, OOM-killed, its node lost) while it
   holds the execution's lease, or its job ends before taking a queued execution (an
   interrupted start). Nothing is written; the lease just stops being renewed.
2. A reader that may act on the run (kitaru/stacks/_runs.py: the submitting process's
   handle, `executions get` / `list`, the server's sweeper) notices: a `running`
   execution whose lease expired, or a `queued` one past the queued check.
3. It asks the platform. Only a run the platform reports ended (failed, or gone) is
   restarted: a run still alive behind an expired lease (a partition) is left alone, so
   two runs never hold the execution. A run that was cancelled on the platform, or
   exited 0 without taking the execution (a broken image), is not restarted.
4. If the stack allows another restart and the backoff (`restart_backoff_seconds`,
   doubled for each restart already made) has passed since the run died, the reader
   moves the execution back to `queued` atomically (status and owner as it saw them:
   of two readers, one wins) and submits it again; the record's metadata counts the
   restarts and keeps the last reason.
5. Out of restarts, the execution is left as it is today: `crashed` for one that was
   running (`kitaru executions resume` still works), `failed` for one that never started.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from kitaru._lease import effective_status
from kitaru.journal import ExecutionRecord, Journal, StackRecord

if TYPE_CHECKING:
    from kitaru.stacks._contracts import RunStatus

log = logging.getLogger("kitaru.stacks")

RESTARTS = "restarts"
RESTART_REASON = "restart_reason"
# Run states after which a restart may help: the run died, or the platform lost it.
RESTARTABLE = ("failed", "missing")


def budget(stack: StackRecord) -> tuple[int, float]:
    """The stack's `max_restarts` and `restart_backoff_seconds`."""
    raw_max = stack.settings.get("max_restarts") or 0
    raw_backoff = stack.settings.get("restart_backoff_seconds")
    backoff = 10.0 if raw_backoff is None else float(raw_backoff)
    return int(raw_max), backoff


def restarts_made(record: ExecutionRecord) -> int:
    made = record.metadata.get(RESTARTS, 0)
    return made if isinstance(made, int) else 0


def lost(record: ExecutionRecord) -> bool:
    """A `running` execution on an orchestrator whose lease holder is gone."""
    return (
        record.status == "running"
        and record.run_id is not None
        and effective_status(record.status, record.owner, record.lease_until) == "crashed"
    )


def may_restart(stack: StackRecord, record: ExecutionRecord, status: RunStatus, now: float) -> bool:
    """Whether a reader restarts the execution now, its run having ended with `status`."""
    if status.state not in RESTARTABLE:
        return False
    most, backoff = budget(stack)
    made = restarts_made(record)
    if made >= most:
        return False
    died = record.lease_until if record.status == "running" else record.updated_at
    due: float = (died or record.updated_at) + backoff * (2**made)
    return now >= due


def restart(
    journal: Journal, record: ExecutionRecord, status: RunStatus, *, server_url: str | None = None
) -> ExecutionRecord:
    """Submit the execution again (see the module's docstring, step 4)."""
    from kitaru.stacks._submit import resubmit

    made = restarts_made(record) + 1
    reason = f"run {record.run_id} {status.state}"
    if status.exit_code is not None:
        reason += f", exit code {status.exit_code}"
    if status.detail:
        reason += f": {status.detail}"
    restarted = resubmit(journal, record, server_url=server_url)
    journal.set_metadata(record.exec_id, {RESTARTS: made, RESTART_REASON: reason})
    log.warning("restarted %s (restart %d): its run %s", record.exec_id, made, reason)
    return journal.get_execution(record.exec_id) or restarted


def restart_if_lost(
    journal: Journal,
    record: ExecutionRecord,
    *,
    now: float | None = None,
    server_url: str | None = None,
) -> ExecutionRecord:
    """For a reader: restart a `running` execution whose run died, if its stack allows.
    Best effort, like `reconcile`: a platform that cannot answer leaves it as it is."""
    if not lost(record):
        return record
    from kitaru._errors import KitaruError
    from kitaru.stacks import _resolve, _runs
    from kitaru.stacks._submit import make_orchestrator

    assert record.run_id is not None
    try:
        stack = _resolve.get_stack(journal, record.stack)
        if budget(stack)[0] <= restarts_made(record):
            return record
        orchestrator = make_orchestrator(stack)
        if not _runs.may_act(journal, record, orchestrator):
            return record
        status = orchestrator.status(record.run_id)
        if not may_restart(stack, record, status, time.time() if now is None else now):
            return record
        return restart(journal, record, status, server_url=server_url)
    except KitaruError as exc:
        log.debug("could not restart %s: %s", record.exec_id, exc)
        return record
    except Exception as exc:  # a platform SDK raises its own error types
        log.debug("could not ask the orchestrator about %s: %s", record.exec_id, exc)
        return record
