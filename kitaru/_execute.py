"""Running a flow function as an execution in this process: start, drive, finish."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kitaru import _config, _lease, _speak
from kitaru._errors import (
    ExecutionCancelled,
    ExecutionLost,
    ExecutionReleased,
    ExecutionSuspended,
    ExecutionTakenOver,
    JournalUnavailableError,
    KitaruError,
    LeaseError,
    SerializationError,
)
from kitaru._events import write_entries
from kitaru._flow_inputs import bind_inputs, input_artifacts
from kitaru._ids import new_id
from kitaru.artifacts import open_store
from kitaru.journal import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    Journal,
    WaitRecord,
    current_journal,
)

if TYPE_CHECKING:
    pass


def new_record(
    flow: Any,
    *,
    stack: str,
    artifact_store: str,
    now: float,
    owner: str | None,
    exec_id: str | None = None,
    idempotency_key: str | None = None,
) -> ExecutionRecord:
    return ExecutionRecord(
        exec_id=exec_id or new_id("kx"),
        flow=flow.name,
        status="running",
        created_at=now,
        updated_at=now,
        flow_ref=flow.flow_ref,
        flow_file=flow.flow_file,
        import_path=flow.import_path,
        python=sys.executable,
        stack=stack,
        artifact_store=artifact_store,
        owner=owner,
        heartbeat_at=now if owner else None,
        lease_until=now + _lease.LEASE_SECONDS if owner else None,
        runs=1 if owner else 0,
        argv=list(sys.argv),
        idempotency_key=idempotency_key,
    )


def start_local(
    flow: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    stack: str = "local",
    store_uri: str | None = None,
    journal: Journal | None = None,
    idempotency_key: str | None = None,
) -> tuple[ExecutionRecord, bool]:
    """Create an execution of `flow` owned by this process and run it to its end or a
    wait: (its record, True). With an `idempotency_key` an earlier start holds for the
    flow: (that execution as it is now, False), and nothing runs (kitaru/_idempotency.py)."""
    from kitaru import _idempotency

    journal = journal or current_journal()
    store_uri = store_uri or _config.artifact_store_uri()
    open_store(store_uri)  # fail on an unusable store before anything is recorded
    inputs = bind_inputs(flow.fn, args, kwargs)
    found = _idempotency.earlier(journal, flow.name, idempotency_key)
    if found is not None:
        return found, False
    owner = _lease.new_owner()
    record = new_record(
        flow,
        stack=stack,
        artifact_store=store_uri,
        now=time.time(),
        owner=owner,
        idempotency_key=idempotency_key,
    )
    holder = _idempotency.store(
        journal,
        record,
        input_artifacts(record.exec_id, store_uri, flow.fn, inputs, allow_pickle=flow.allow_pickle),
    )
    if holder is not None:
        return holder, False
    # None yet: the first run reads no calls or waits back.
    final = drive(journal, record, owner, flow, args, kwargs, calls=[], waits=[], read_back=False)
    return final, True


def drive(
    journal: Journal,
    record: ExecutionRecord,
    owner: str,
    flow: Any,
    args: Any,
    kwargs: dict[str, Any],
    *,
    calls: list[CallRecord] | None = None,
    waits: list[WaitRecord] | None = None,
    read_back: bool = True,
) -> ExecutionRecord:
    """Run the flow function for an execution this process holds the lease of.

    `calls` and `waits` are the execution's journal calls and waits when the caller
    knows them (it has just written them: a replay, a new execution), so the first run
    does not read them back. The run's last feed entries are stored with its status.
    Without `read_back`, an execution this run completed is returned as the run left
    it, not read again (a flag another process set meanwhile, a cancel requested too
    late, is not in it): for a caller that needs only how it ended."""
    status, error, result, entries = _run_once(
        journal, record, owner, flow, args, kwargs, calls, waits
    )
    for _retry in range(flow.retries):
        if status != "failed":
            break
        write_entries(journal, record.exec_id, owner, entries)
        # a retry reads what the failed run committed
        status, error, result, entries = _run_once(
            journal, record, owner, flow, args, kwargs, None, None
        )
    if status == "lost":
        _speak.plain_when_uncaught(JournalUnavailableError)
        raise JournalUnavailableError(lost_message(record.exec_id, error or ""))
    if status == "taken":
        _speak.plain_when_uncaught(LeaseError)
        raise LeaseError(
            f"execution {record.exec_id} stopped: {error}; the other process runs it on "
            f"(see it with: kitaru executions get {record.exec_id})"
        )
    if status == "released":
        # A stopping worker hands it back to its queue at a checkpoint boundary; a cancel
        # requested meanwhile wins (the move to queued refuses a cancelled execution).
        write_entries(journal, record.exec_id, owner, entries)
        entries = []
        released = journal.transition(
            record.exec_id,
            to="queued",
            from_statuses=("running",),
            expected_owner=owner,
            now=time.time(),
        )
        status = "queued" if released else "cancelled"
    if status != "queued":
        now = time.time()
        ended = journal.finish(
            record.exec_id,
            owner=owner,
            status=status,
            now=now,
            error=error,
            result=result,
            events=entries,
        )
        if ended and status == "completed" and not read_back:
            return dataclasses.replace(
                record,
                status=status,
                owner=None,
                lease_until=None,
                updated_at=now,
                ended_at=now,
                result_artifact=result.artifact_id if result else None,
            )
    final = journal.get_execution(record.exec_id)
    assert final is not None
    return final


def _run_once(
    journal: Journal,
    record: ExecutionRecord,
    owner: str,
    flow: Any,
    args: Any,
    kwargs: dict[str, Any],
    calls: list[CallRecord] | None,
    waits: list[WaitRecord] | None,
) -> tuple[str, str | None, ArtifactRecord | None, list[EventRecord]]:
    """One run of the flow function: its status, error, result, and its last feed
    entries (written by the caller with the status change that follows)."""
    from kitaru import _logs, _runtime, _tracebacks, _tracing  # (on a run, not on import)

    ctx = _runtime.ExecutionContext(journal, record, owner, calls, waits)
    heartbeat = ctx.heartbeat = _lease.Heartbeat(
        lambda: journal.heartbeat(
            ctx.exec_id,
            owner=owner,
            now=time.time(),
            lease_until=time.time() + _lease.LEASE_SECONDS,
        ),
        ctx.cancel.set,
    )
    heartbeat.start()
    restore_signal = _catch_cancel_signal()
    ctx.trace = _tracing.start_run(ctx, flow.name)  # (what it says goes to stderr, not the logs)
    _logs.install()
    if ctx.trace is not None:
        ctx.trace.attach()
    deactivate = _runtime.activate(ctx)
    ctx.feed.add("run_started", flow.name, None, {"run": ctx.run})
    status, error, result = "failed", None, None
    entries: list[EventRecord] = []
    try:
        try:
            if flow.is_async:
                import asyncio

                value = asyncio.run(flow.fn(*args, **kwargs))
            else:
                value = flow.fn(*args, **kwargs)
        except ExecutionSuspended:
            status = "waiting"
        except ExecutionReleased:
            status = "released"
        except ExecutionTakenOver as exc:
            status, error = "taken", exc.reason
        except ExecutionLost as exc:
            status, error = "lost", exc.reason
        except JournalUnavailableError as exc:
            # Raised outside a checkpoint commit (a wait, a save): the same outage.
            status, error = "lost", str(exc)
        except ExecutionCancelled:
            status = "cancelled"
        except (KeyboardInterrupt, SystemExit) as exc:
            error = f"{type(exc).__name__}: interrupted"
            _tracebacks.keep(ctx.flow_buffer, exc)
            raise
        except BaseException as exc:
            error = _describe_failure(exc)
            _tracebacks.keep(ctx.flow_buffer, exc)
            if not isinstance(exc, Exception):
                raise
        else:
            try:
                result = ctx.artifact(
                    value,
                    name="result",
                    producer="result",
                    producer_key=None,
                    what=f"flow {flow.name!r}",
                    hint=flow.return_hint(),
                    allow_pickle=flow.allow_pickle,
                )
                status = "completed"
            except SerializationError as exc:
                error = str(exc)
    finally:
        deactivate()
        _logs.uninstall()
        restore_signal()
        heartbeat.stop()
        if status in ("lost", "taken"):
            # The journal is away (the status stays running with this process as owner,
            # so it reads as crashed once it exits), or another process runs the
            # execution now: nothing more is written.
            ctx.feed.abandon()
        else:
            journal.append_logs(ctx.flow_buffer.take())
            # Stored with the status: whoever sees the execution ended has every entry.
            entries = ctx.feed.end(status, error)
        if ctx.trace is not None:
            ctx.trace.end("crashed" if status in ("lost", "taken") else status, error)
        if error is not None and status == "failed" and sys.exc_info()[0] is not None:
            # Interrupted (Ctrl-C): record the failure before the interrupt propagates.
            journal.finish(
                record.exec_id,
                owner=owner,
                status="failed",
                now=time.time(),
                error=error,
                events=entries,
            )
            _speak.interrupted(record.exec_id, error)
    return status, error, result, entries


def lost_message(exec_id: str, reason: str) -> str:
    """One line: what failed, how the execution stands, and the command that continues it."""
    return (
        f"execution {exec_id} stopped: {reason}; it shows as crashed, and nothing after "
        f"its last committed checkpoint was recorded; once the journal is back, continue "
        f"it with: kitaru executions resume {exec_id}"
    )


def _describe_failure(exc: BaseException) -> str:
    import traceback

    key = getattr(exc, "kitaru_checkpoint", None)
    where = f"in checkpoint {key!r}: " if key else ""
    tb = traceback.extract_tb(exc.__traceback__)
    site = ""
    if tb and not isinstance(exc, KitaruError):
        site = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})"
    return f"{where}{type(exc).__name__}: {exc}{site}"


def _on_cancel_signal(_signum: int, _frame: Any) -> None:
    # The terminal of a script being cancelled learns why it stops (or is killed); the
    # descriptor is written directly, which is safe inside a signal handler.
    with contextlib.suppress(OSError):
        os.write(
            2,
            b"kitaru: cancel requested (kitaru executions cancel); stopping at the next "
            b"checkpoint boundary, or killed when the grace period ends\n",
        )
    from kitaru import _runtime

    _runtime.request_cancel_all()


def _catch_cancel_signal() -> Callable[[], None]:
    """Route `kitaru executions cancel` (SIGUSR1 from the same host) to the running flows."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    try:
        previous = signal.signal(_lease.CANCEL_SIGNAL, _on_cancel_signal)
    except ValueError:
        return lambda: None

    def restore() -> None:
        signal.signal(_lease.CANCEL_SIGNAL, previous)

    return restore
