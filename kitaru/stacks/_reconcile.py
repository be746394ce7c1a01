"""What a submitted execution's orchestrator says about it: its run's logs, a run that
ended without taking its execution (failed, with the reason, or restarted), and a
cancel that stops the run."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from kitaru._errors import KitaruError, KitaruUsageError
from kitaru._handle import ExecutionHandle
from kitaru.journal import ExecutionRecord, Journal, current_journal
from kitaru.stacks import _resolve as _stacks
from kitaru.stacks import _runs

if TYPE_CHECKING:
    from kitaru.stacks._contracts import RunStatus
from kitaru.stacks._components import make_orchestrator

log = logging.getLogger("kitaru.stacks")


def _fail_queued(journal: Journal, exec_id: str, error: str) -> None:
    """Fail an execution no run has taken yet (a no-op once one has)."""
    journal.transition(
        exec_id,
        to="failed",
        from_statuses=("queued",),
        expected_owner=None,
        now=time.time(),
        error=error,
    )


def stop_run(journal: Journal, record: ExecutionRecord) -> None:
    """Cancel the execution's current run on its orchestrator (best effort; only a run
    this process may act on, kitaru/stacks/_runs.py)."""
    if record.run_id is None:
        return
    try:
        stack = _stacks.get_stack(journal, record.stack)
        orchestrator = make_orchestrator(stack)
        if _runs.may_act(journal, record, orchestrator):
            orchestrator.cancel(record.run_id)
    except KitaruError:
        pass


def orchestrator_logs(journal: Journal, record: ExecutionRecord) -> str:
    if record.run_id is None:
        return ""
    stack = _stacks.get_stack(journal, record.stack)
    orchestrator = make_orchestrator(stack)
    if not _runs.may_act(journal, record, orchestrator):
        raise KitaruUsageError(
            f"run {record.run_id!r} of execution {record.exec_id} was not submitted from "
            f"here, so its logs are not read from here (a record names it, and records "
            f"through a server are anyone's to write); read them where it was submitted, "
            f"or on the {stack.orchestrator} platform itself"
        )
    return orchestrator.logs(record.run_id)


# How long an execution may stay queued before a reader asks its orchestrator whether
# the run behind it is still alive: asking is a platform API call, and a healthy
# container takes the lease within seconds of starting.
QUEUED_CHECK_AFTER = 5.0


def reconcile_if_stale(
    journal: Journal,
    record: ExecutionRecord,
    *,
    after: float = QUEUED_CHECK_AFTER,
    now: float | None = None,
) -> ExecutionRecord:
    """`reconcile` for an execution queued longer than `after` seconds; a restart for a
    running one whose run died (kitaru/stacks/_restarts.py); else `record`."""
    if record.status == "running":
        from kitaru.stacks._restarts import restart_if_lost

        return restart_if_lost(journal, record, now=now)
    if record.status != "queued" or record.run_id is None:
        return record
    if (time.time() if now is None else now) - record.updated_at <= after:
        return record
    return reconcile(journal, record)


def reconcile(
    journal: Journal, record: ExecutionRecord, *, server_url: str | None = None
) -> ExecutionRecord:
    """A queued execution whose run ended without taking it is failed, with the reason
    (the end of the run's log). Only by a process that may act on the run
    (kitaru/stacks/_runs.py): the one that submitted it, or any with the journal open.

    Best effort, for readers: a stack or platform that cannot answer leaves the
    execution as it is rather than failing the read that asked."""
    if record.status != "queued" or record.run_id is None:
        return record
    try:
        stack = _stacks.get_stack(journal, record.stack)
        orchestrator = make_orchestrator(stack)
        if not _runs.may_act(journal, record, orchestrator):
            return record  # a run this process did not start: not its to judge
        status = orchestrator.status(record.run_id)
        if status.state not in ("succeeded", "failed", "cancelled", "missing"):
            return record
        current = journal.get_execution(record.exec_id)
        if current is None or current.status != "queued" or current.run_id != record.run_id:
            return current or record
        from kitaru.stacks import _restarts

        if _restarts.may_restart(stack, current, status, time.time()):
            return _restarts.restart(journal, current, status, server_url=server_url)
        tail = ""
        if status.state != "missing":
            tail = "\n".join(orchestrator.logs(record.run_id).strip().splitlines()[-5:])
        _fail_queued(journal, record.exec_id, ended_error(record, status, tail))
    except KitaruError:
        return record
    except Exception as exc:  # a platform SDK raises its own error types
        log.debug("could not ask the orchestrator about %s: %s", record.exec_id, exc)
        return record
    return journal.get_execution(record.exec_id) or record


def ended_error(record: ExecutionRecord, status: RunStatus, tail: str = "") -> str:
    """What a user reads of a run that ended without starting its execution: the
    platform's state, exit code and reason, then the end of the run's log."""
    how: str = status.state
    if status.exit_code is not None:
        how += f", exit code {status.exit_code}"
    if status.detail:
        how += f": {status.detail}"
    verb = "is gone" if status.state == "missing" else "ended"
    return (
        f"the {record.orchestrator} run {record.run_id} {verb} ({how}) without starting "
        "the execution" + (f": {tail}" if tail else "")
    )


class StackExecutionHandle(ExecutionHandle[Any]):
    """A handle on an execution that runs elsewhere: polls the journal, and asks the
    orchestrator when a queued execution seems to never start."""

    @property
    def status(self) -> str:
        record = self._record()
        record = reconcile_if_stale(self._journal or current_journal(), record)
        from kitaru._lease import effective_status

        return effective_status(record.status, record.owner, record.lease_until)
