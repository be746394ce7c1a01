"""Resuming an execution: the same execution continues, completed calls read back.

Also what every operation on executions from outside their flow starts with: the
record, its effective status, and a detached `kitaru` process to run a command in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from kitaru import _execute, _flow_inputs, _ids, _lease, _loader, _ready, _speak, _trust
from kitaru._errors import KitaruUsageError, LeaseError, NotFoundError
from kitaru.journal import ExecutionRecord, Journal, current_journal


def get_execution(journal: Journal, exec_id: str) -> ExecutionRecord:
    record = journal.get_execution(exec_id)
    if record is None:
        raise NotFoundError(_ids.not_found("kx", exec_id, journal.url))
    return record


def status_of(record: ExecutionRecord) -> str:
    return _lease.effective_status(record.status, record.owner, record.lease_until)


def resume(
    exec_id: str, *, detach: bool = False, journal: Journal | None = None
) -> ExecutionRecord:
    """Continue the same execution: completed calls are read back, the rest run."""
    journal = journal or current_journal()
    record = get_execution(journal, exec_id)
    check_resumable(record)
    if status_of(record) == "crashed":
        _speak.resuming_crashed(record)
    if record.status == "waiting" and _speak.still_sleeping(journal, record):
        return record  # a resume before the wake time leaves it sleeping
    if (
        record.deployment_version is not None
        and record.queue is not None
        and _ready.for_workers(record)
    ):
        # An invoked version put in a queue: a worker whose code is its snapshot runs it,
        # never the code on this machine, which may differ.
        if record.status != "queued" and not _ready.mark_ready(journal, record, "resume requested"):
            raise LeaseError(f"execution {exec_id} changed while it was being resumed; try again")
        return get_execution(journal, exec_id)
    if record.run_id is not None:
        # It ran on an orchestrator: submit it again there, in the same image.
        from kitaru.stacks._submit import resubmit

        return resubmit(journal, record)
    if detach:
        return _spawn(journal, record, ["executions", "resume", exec_id])
    owner = _lease.new_owner()
    now = time.time()
    if not journal.take_lease(
        exec_id,
        owner=owner,
        expected_owner=record.owner,
        statuses=(record.status,),
        now=now,
        lease_until=now + _lease.LEASE_SECONDS,
    ):
        raise LeaseError(
            f"execution {exec_id} is being resumed by another process; "
            f"see `kitaru executions get {exec_id}`"
        )
    try:
        flow = _loader.load_flow(record, journal=journal)
        inputs = _flow_inputs.load_inputs(journal, record, flow.fn, allow_pickle=flow.allow_pickle)
    except BaseException as exc:
        _give_back(journal, record, owner, str(exc))
        raise
    args, kwargs = _flow_inputs.call_args(flow.fn, inputs)
    leased = get_execution(journal, exec_id)
    return _execute.drive(journal, leased, owner, flow, args, kwargs)


def _give_back(journal: Journal, record: ExecutionRecord, owner: str, error: str) -> None:
    """Release the lease of a resume that could not start, leaving the execution as it
    was: a ready one stays queued (and ready), a waiting one waiting, with the reason.
    Best effort: the reason the user must see is the error being raised, and a lease
    left behind expires by itself."""
    now = time.time()
    try:
        if record.status == "queued":
            journal.transition(
                record.exec_id,
                to="queued",
                from_statuses=("running",),
                expected_owner=owner,
                now=now,
                error=error,
            )
        else:
            status = record.status if record.status != "running" else "failed"
            journal.finish(record.exec_id, owner=owner, status=status, now=now, error=error)
    except Exception:
        pass  # whatever went wrong here, the caller's error is the one to see


def check_resumable(record: ExecutionRecord) -> None:
    """Raise unless the execution can continue (crashed, failed, waiting, queued)."""
    exec_id = record.exec_id
    status = status_of(record)
    if status == "completed":
        raise KitaruUsageError(
            f"execution {exec_id} already completed; to run it again from a checkpoint use "
            f"`kitaru executions replay {exec_id} --from <checkpoint>`"
        )
    if status == "cancelled":
        raise KitaruUsageError(
            f"execution {exec_id} was cancelled and does not resume; replay it instead: "
            f"`kitaru executions replay {exec_id} --from <checkpoint>`"
        )
    if status == "running":
        raise LeaseError(
            f"execution {exec_id} is running ({_owner_text(record.owner)}); it cannot be "
            "resumed twice at once"
        )


def _owner_text(owner: str | None) -> str:
    if not owner:
        return "owner unknown"
    try:
        host, pid, _ = _lease.parse_owner(owner)
    except ValueError:
        return owner
    return f"pid {pid} on {host}"


def _back_to_queue(journal: Journal, record: ExecutionRecord, reason: str) -> bool:
    """An execution submitted to a queue continues on a worker, under the queue's limits,
    not in the process that answered it: queue it again; whether it was."""
    if record.queue is None or not _ready.for_workers(record):
        return False
    _ready.mark_ready(journal, record, reason)
    return True


def _spawn(journal: Journal, record: ExecutionRecord, argv: list[str]) -> ExecutionRecord:
    """Run a kitaru command in a detached process with the execution's Python."""
    _start(journal, record, argv)
    return record


def _start(journal: Journal, record: ExecutionRecord, argv: list[str]) -> subprocess.Popen[bytes]:
    # The Python the execution was started with; a record from a server may name any
    # executable, so there it is this one (the command runs in this environment anyway).
    python = record.python if _trust.trusts_records(journal) else None
    python = python if python and os.path.exists(python) else sys.executable
    path = _log_path(argv[argv.index("--exec-id") + 1] if "--exec-id" in argv else record.exec_id)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "ab") as out:
        return subprocess.Popen(
            [python, "-m", "kitaru", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=os.environ.copy(),
        )


def _last_error(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else None)


def _log_path(exec_id: str) -> str:
    from kitaru import _config

    return str(_config.home() / "logs" / f"{exec_id}.log")
