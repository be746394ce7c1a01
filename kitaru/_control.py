"""Acting on executions from outside their flow: resume, replay, input, cancel.

The CLI, the client and the server all go through these functions.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kitaru import (
    _execute,
    _ids,
    _lease,
    _loader,
    _ready,
    _replay_values,
    _serialize,
    _speak,
    _trust,
)
from kitaru._artifact_io import build_artifact
from kitaru._errors import (
    InvalidInputError,
    KitaruUsageError,
    LeaseError,
    NotFoundError,
)
from kitaru._wait import validate
from kitaru.artifacts import open_store
from kitaru.journal import CallRecord, ExecutionRecord, Journal, WaitRecord, current_journal
from kitaru.journal._records import call_output_id


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
        inputs = _execute.load_inputs(journal, record, flow.fn, allow_pickle=flow.allow_pickle)
    except BaseException as exc:
        _give_back(journal, record, owner, str(exc))
        raise
    args, kwargs = _execute.call_args(flow.fn, inputs)
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


def find_wait(journal: Journal, exec_id: str, name: str) -> WaitRecord:
    waits = journal.waits(exec_id)
    exact = [w for w in waits if w.key == name]
    if not exact:
        pending = [w for w in waits if w.name == name and w.status == "pending"]
        if len(pending) > 1:
            # Parallel branches each wait under this name: say which one.
            keys = ", ".join(w.key for w in pending)
            raise InvalidInputError(
                f"execution {exec_id} has {len(pending)} pending waits named {name!r} "
                f"({keys}); give the wait's key, e.g. {pending[0].key}"
            )
        exact = pending or [w for w in waits if w.name == name]
    if not exact:
        known = ", ".join(w.key for w in waits) or "none"
        raise NotFoundError(f"execution {exec_id} has no wait named {name!r}; its waits: {known}")
    return exact[-1]


def parse_json(raw: str, what: str, *, schema: dict[str, Any] | None = None) -> Any:
    """`raw` as JSON; when it is not, the hint fits `schema` (a wait's) when given."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        from kitaru._wait import answer_hint

        hint = ""
        if schema is not None:
            hint = f" ({answer_hint(schema)})"
        elif raw and raw[0] not in '[{"-0123456789tfn':
            hint = " (strings need JSON quotes: '\"text\"')"
        raise InvalidInputError(
            f"{what} is not valid JSON: {exc.msg} at position {exc.pos}{hint}"
        ) from None


def give_input(
    exec_id: str,
    name: str,
    value: Any,
    *,
    resume_after: bool = True,
    detach: bool = False,
    journal: Journal | None = None,
) -> ExecutionRecord:
    """Answer a pending wait with a JSON value, then resume the execution (the CLI and
    the client, where the flow's code is; the server answers in kitaru/server/_actions.py)."""
    journal = journal or current_journal()
    record = get_execution(journal, exec_id)
    wait = find_wait(journal, exec_id, name)
    if wait.metadata.get("sleep"):
        raise KitaruUsageError(
            f"{wait.key!r} of execution {exec_id} is a kitaru.sleep(), not a wait: it takes no "
            "input and ends by itself at its wake time"
        )
    if wait.status != "pending":
        raise KitaruUsageError(
            f"wait {wait.key!r} of execution {exec_id} is already answered; nothing was changed"
        )
    status = status_of(record)
    if status in ("completed", "cancelled", "failed"):
        raise KitaruUsageError(
            f"execution {exec_id} is {status}; its wait {wait.key!r} can no longer be answered"
        )
    model = None
    if wait.schema.get("type") == "model":
        model = _schema_model(journal, record, wait.schema["type_ref"])
    checked = validate(wait.schema, value, model=model)
    encoded = _serialize.encode(checked, what=f"input for wait {wait.key!r}")
    artifact = build_artifact(
        exec_id=exec_id,
        store=open_store(record.artifact_store or ""),
        name=wait.key,
        producer="wait",
        producer_key=wait.key,
        encoded=encoded,
    )
    if not journal.answer_wait(exec_id, wait.key, artifact, now=time.time()):
        raise KitaruUsageError(
            f"wait {wait.key!r} of execution {exec_id} was answered by someone else just now"
        )
    record = get_execution(journal, exec_id)
    if resume_after and status_of(record) == "waiting":
        if _back_to_queue(journal, record, f"wait {wait.key!r} answered"):
            return get_execution(journal, exec_id)
        return resume(exec_id, detach=detach, journal=journal)
    return record


def _back_to_queue(journal: Journal, record: ExecutionRecord, reason: str) -> bool:
    """An execution submitted to a queue continues on a worker, under the queue's limits,
    not in the process that answered it: queue it again; whether it was."""
    if record.queue is None or not _ready.for_workers(record):
        return False
    _ready.mark_ready(journal, record, reason)
    return True


def _schema_model(journal: Journal, record: ExecutionRecord, ref: str) -> Any:
    """Import the wait's model class the way a resume would; None if it cannot be."""
    try:
        _loader.load_flow(record, journal=journal)
        return _serialize.resolve_type(ref)
    except Exception:
        return None


def _replay_source(
    journal: Journal, exec_id: str, from_: str, overrides: Mapping[str, Any] | None
) -> tuple[ExecutionRecord, list[CallRecord], dict[str, CallRecord], CallRecord, dict[str, Any]]:
    """What a replay starts from, checked against what the journal knows."""
    source = get_execution(journal, exec_id)
    if status_of(source) == "running":
        raise KitaruUsageError(
            f"execution {exec_id} is running; replay it once it has stopped, or cancel it first"
        )
    calls = journal.calls(exec_id)
    by_key = {c.key: c for c in calls}
    start = by_key.get(from_)
    if start is None:
        keys = ", ".join(c.key for c in calls) or "none"
        raise NotFoundError(
            f"execution {exec_id} has no checkpoint {from_!r}; its checkpoints: {keys}"
        )
    chosen = dict(overrides or {})
    for key in chosen:
        if key not in by_key:
            keys = ", ".join(c.key for c in calls)
            raise NotFoundError(
                f"cannot override {key!r}: execution {exec_id} has no such checkpoint; "
                f"its checkpoints: {keys}"
            )
    return source, calls, by_key, start, chosen


def replay(
    exec_id: str,
    *,
    from_: str,
    overrides: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    detach: bool = False,
    journal: Journal | None = None,
    new_exec_id: str | None = None,
) -> ExecutionRecord:
    """Start a new execution that reuses the source's outputs above `from_`, and run it
    in this process (or, with `detach`, in a background process on this machine)."""
    journal = journal or current_journal()
    source, calls, by_key, start, overrides = _replay_source(journal, exec_id, from_, overrides)
    # Clear type mismatches are refused before the flow's code is even loaded.
    _replay_values.check(journal, exec_id, overrides=overrides, inputs=inputs)
    flow = _loader.load_flow(source, journal=journal)
    params = _execute.load_inputs(journal, source, flow.fn, allow_pickle=flow.allow_pickle)
    if inputs:
        import inspect

        names = set(inspect.signature(flow.fn).parameters)
        for name in inputs:
            if name not in names:
                raise KitaruUsageError(
                    f"flow {source.flow!r} has no parameter {name!r}; its parameters: "
                    f"{', '.join(sorted(names))}"
                )
        params.update(inputs)
    for key, value in overrides.items():
        _check_override(source, by_key[key], value)

    if detach:
        return _spawn_replay(journal, source, from_, overrides, dict(inputs or {}))
    owner = _lease.new_owner()
    now = time.time()
    store_uri = source.artifact_store or ""
    record = _execute.new_record(
        flow,
        stack=source.stack,
        artifact_store=store_uri,
        now=now,
        owner=owner,
        exec_id=new_exec_id,
    )
    record.replayed_from = exec_id
    record.replay_point = from_
    journal.create_execution(
        record,
        _execute.input_artifacts(
            record.exec_id, store_uri, flow.fn, params, allow_pickle=flow.allow_pickle
        ),
    )
    journal.copy_calls(exec_id, record.exec_id, before_seq=start.seq, overridden=overrides)
    journal.copy_waits(exec_id, record.exec_id, before_seq=start.seq)
    # What the journal now holds for the new execution, without reading it back: the
    # source's records, marked as copies (a copy's output is reused whatever inputs the
    # replay gives its call, on this run as on a resume of it).
    reused = {
        c.seq: dataclasses.replace(c, reused_from=c.reused_from or exec_id)
        for c in calls
        if c.seq < start.seq and c.status == "completed"
    }
    for key, value in overrides.items():
        override = _commit_override(journal, record, owner, by_key[key], value)
        reused[override.seq] = override
    args, kwargs = _execute.call_args(flow.fn, params)
    return _execute.drive(
        journal, record, owner, flow, args, kwargs, calls=[reused[k] for k in sorted(reused)]
    )


def record_replay(
    journal: Journal,
    exec_id: str,
    *,
    from_: str,
    overrides: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
) -> ExecutionRecord:
    """Record a replay without its code (what a server does): the new execution reuses
    the source's calls and answers before `from_`, takes `overrides` as the outputs of
    those checkpoints and `inputs` in place of flow arguments, all as JSON, and is left
    `running` under an owner only this call knows, for the caller to hand to a runner
    (kitaru/server/_actions.py). The flow's own checks (parameter names, override types)
    happen when a runner loads it."""
    from kitaru._ids import new_id

    source, _calls, by_key, start, overrides = _replay_source(journal, exec_id, from_, overrides)
    owner = _lease.new_owner()
    now = time.time()
    record = ExecutionRecord(
        exec_id=new_id("kx"),
        flow=source.flow,
        status="running",
        created_at=now,
        updated_at=now,
        flow_ref=source.flow_ref,
        flow_file=source.flow_file,
        import_path=source.import_path,
        python=source.python,
        stack=source.stack,
        orchestrator=source.orchestrator,
        owner=owner,
        heartbeat_at=now,
        lease_until=now + _lease.LEASE_SECONDS,
        replayed_from=exec_id,
        replay_point=from_,
        artifact_store=source.artifact_store,
        metadata={"image": source.metadata["image"]} if "image" in source.metadata else {},
        argv=list(source.argv),
        project_root=source.project_root,
        deployment_version=source.deployment_version,
    )
    given = dict(inputs or {})
    copied = []
    for listed in journal.list_artifacts(exec_id, producer="input"):
        if listed.name in given:
            continue
        full = journal.get_artifact(listed.artifact_id)
        if full is not None:
            copied.append(
                dataclasses.replace(full, artifact_id=new_id("ka"), exec_id=record.exec_id)
            )
    for name, value in given.items():
        encoded = _serialize.encode(value, what=f"flow input {name!r}")
        store = open_store(record.artifact_store or "")
        copied.append(_execute.input_artifact(record.exec_id, store, name, encoded))
    journal.create_execution(record, copied)
    journal.copy_calls(exec_id, record.exec_id, before_seq=start.seq, overridden=overrides)
    journal.copy_waits(exec_id, record.exec_id, before_seq=start.seq)
    for key, value in overrides.items():
        _commit_override(journal, record, owner, by_key[key], value)
    return record


def _spawn_replay(
    journal: Journal,
    source: ExecutionRecord,
    from_: str,
    overrides: dict[str, Any],
    inputs: dict[str, Any],
) -> ExecutionRecord:
    from kitaru._ids import new_id

    exec_id = new_id("kx")
    argv = ["executions", "replay", source.exec_id, "--from", from_, "--exec-id", exec_id]
    for key, value in overrides.items():
        argv += ["--override", f"{key}={json.dumps(value)}"]
    for key, value in inputs.items():
        argv += ["--input", f"{key}={json.dumps(value)}"]
    proc = _start(journal, source, argv)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = journal.get_execution(exec_id)
        if record is not None:
            return record
        if proc.poll() is not None and journal.get_execution(exec_id) is None:
            # It stopped before creating the execution: its own check refused the replay.
            raise KitaruUsageError(_last_error(_log_path(exec_id)) or "the replay did not start")
        time.sleep(0.05)
    raise LeaseError(f"the background replay did not start within 30 s; see {_log_path(exec_id)}")


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


def _check_override(source: ExecutionRecord, call: CallRecord, value: Any) -> None:
    """Fail before anything is recorded if the value cannot stand in for the output."""
    out = call.output
    if out is None or out.serializer in ("json", "typed-json", "bytes", "pickle"):
        return
    data = json.dumps(value).encode()
    try:
        _serialize.decode(out.serializer, out.type_ref, data)
    except Exception as exc:
        raise InvalidInputError(
            f"override for {call.key!r} does not fit its type {out.type_ref}: {exc}"
        ) from None


def _commit_override(
    journal: Journal, record: ExecutionRecord, owner: str, call: CallRecord, value: Any
) -> CallRecord:
    out = call.output
    encoded = _serialize.Encoded(
        out.serializer if out is not None and out.serializer not in ("bytes", "pickle") else "json",
        out.type_ref
        if out is not None and out.serializer not in ("bytes", "pickle")
        else "builtins:object",
        json.dumps(value).encode(),
    )
    artifact = build_artifact(
        exec_id=record.exec_id,
        store=open_store(record.artifact_store or ""),
        name=call.key,
        producer="override",
        producer_key=call.key,
        encoded=encoded,
        artifact_id=call_output_id(record.exec_id, call.seq),
    )
    now = time.time()
    override = CallRecord(
        exec_id=record.exec_id,
        key=call.key,
        seq=call.seq,
        name=call.name,
        func=call.func,
        status="completed",
        started_at=now,
        ended_at=now,
        run=record.runs,
        kind=call.kind,
        output_artifact=artifact.artifact_id,
        metadata={"override": True},
        output=artifact,
        branch=call.branch,
        pos=call.pos,
        fingerprint=call.fingerprint,
    )
    journal.commit_call(override, artifact, [], owner=owner)
    return override


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
            from kitaru.remote._journal import HttpJournal

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
