"""Cancelling an execution, and sweeping waits whose timeout has passed."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from kitaru import _lease, _trust
from kitaru._errors import KitaruUsageError, LeaseError
from kitaru._resume import _back_to_queue, get_execution, resume, status_of
from kitaru.journal import ExecutionRecord, Journal, current_journal


def cancel(
    exec_id: str,
    *,
    grace: float = 10.0,
    journal: Journal | None = None,
    signal_processes: bool = True,
    report: Callable[[str], None] | None = None,
) -> ExecutionRecord:
    """Stop an execution: a running one at its next checkpoint boundary (killed after
    `grace` seconds), a waiting or crashed one at once. It never resumes by itself.
    `report` is told how it stopped (the CLI prints it).

    `signal_processes=False` (the server): never signal a process named by the record's
    owner, which a client wrote; the running execution stops at its next heartbeat. A
    client working through a server signals none either: anyone with a write token
    writes those records."""
    journal = journal or current_journal()
    signal_processes = signal_processes and _trust.trusts_records(journal)
    record = get_execution(journal, exec_id)
    status = status_of(record)
    if status in ("completed", "cancelled"):
        raise KitaruUsageError(f"execution {exec_id} is already {status}; nothing to cancel")
    if status != "running":
        if not journal.cancel_idle(exec_id, expected_owner=record.owner, now=time.time()):
            raise LeaseError(f"execution {exec_id} changed while cancelling; try again")
        if status == "queued":
            _stop_orchestrator_run(journal, record)
        if report is not None:
            report(f"it was {status}; it never resumes by itself")
        return get_execution(journal, exec_id)
    journal.request_cancel(exec_id, now=time.time())
    pid = _lease.owner_pid_here(record.owner or "") if signal_processes else None
    if pid is not None:
        try:
            os.kill(pid, _lease.CANCEL_SIGNAL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        current = get_execution(journal, exec_id)
        if status_of(current) != "running":
            break
        time.sleep(0.05)
    current = get_execution(journal, exec_id)
    if status_of(current) == "running" and pid is not None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.1)
        if report is not None:
            report(
                f"its process (pid {pid}) did not reach a checkpoint boundary within "
                f"{grace:g}s and was killed"
            )
    elif status_of(current) == "running":
        _stop_orchestrator_run(journal, current)
        if report is not None:
            report(f"it did not stop within {grace:g}s; its {current.orchestrator} run was stopped")
    elif report is not None:
        report("it stopped at a checkpoint boundary")
    current = get_execution(journal, exec_id)
    if current.status != "cancelled":
        try:
            journal.cancel_idle(exec_id, expected_owner=current.owner, now=time.time())
        except LeaseError:
            # A server lets no client clear a live lease through the journal; its own
            # cancel (any write token's to ask) ends the execution after its grace.
            from kitaru.journal._http import HttpJournal

            if isinstance(journal, HttpJournal):
                journal.cancel_execution(exec_id)
    return get_execution(journal, exec_id)


def timed_out(journal: Journal, *, now: float | None = None) -> list[str]:
    """Waiting executions that have a wait past its timeout: they can continue now."""
    now = time.time() if now is None else now
    found: list[str] = []
    for wait in journal.pending_waits():
        if wait.timeout_at is not None and now >= wait.timeout_at and wait.exec_id not in found:
            record = journal.get_execution(wait.exec_id)
            if record is not None and record.status == "waiting":
                found.append(wait.exec_id)
    return found


def sweep(
    *, detach: bool = False, journal: Journal | None = None
) -> tuple[list[ExecutionRecord], dict[str, str]]:
    """Resume every waiting execution whose wait timed out (nothing else polls waits).

    Returns the resumed executions and, by execution id, the errors of those that could
    not be resumed (one broken execution does not stop the others)."""
    from kitaru._errors import KitaruError

    journal = journal or current_journal()
    done: list[ExecutionRecord] = []
    errors: dict[str, str] = {}
    for exec_id in timed_out(journal):
        try:
            record = get_execution(journal, exec_id)
            if _back_to_queue(journal, record, "a wait timed out"):
                done.append(get_execution(journal, exec_id))
                continue
            done.append(resume(exec_id, detach=detach, journal=journal))
        except LeaseError:
            continue  # someone else resumed it first
        except KitaruError as exc:
            errors[exec_id] = str(exc)
    return done, errors


def _stop_orchestrator_run(journal: Journal, record: ExecutionRecord) -> None:
    """Stop the container or job of an execution an orchestrator runs."""
    if record.run_id is not None:
        from kitaru.stacks._submit import stop_run

        stop_run(journal, record)
