"""Replay: a new execution that reuses its source's outputs above a checkpoint."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

from kitaru import _execute, _flow_inputs, _lease, _loader, _replay_values, _serialize
from kitaru._artifact_io import build_artifact
from kitaru._errors import InvalidInputError, KitaruUsageError, LeaseError, NotFoundError
from kitaru._resume import _last_error, _log_path, _start, get_execution, status_of
from kitaru.artifacts import open_store
from kitaru.journal import CallRecord, ExecutionRecord, Journal, current_journal
from kitaru.journal._records import call_output_id, given_call


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
    params = _flow_inputs.load_inputs(journal, source, flow.fn, allow_pickle=flow.allow_pickle)
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
        _flow_inputs.input_artifacts(
            record.exec_id, store_uri, flow.fn, params, allow_pickle=flow.allow_pickle
        ),
    )
    journal.copy_calls(exec_id, record.exec_id, before_seq=start.seq, overridden=overrides)
    journal.copy_waits(exec_id, record.exec_id, before_seq=start.seq)
    # What the journal now holds for the new execution, without reading it back: the
    # source's records, marked as copies (a copy's output is reused whatever inputs the
    # replay gives its call, on this run as on a resume of it).
    # The records were read for this replay alone: marked in place (a copy per reused
    # call cost more than the rest of reusing it).
    reused = [c for c in calls if c.seq < start.seq and c.status == "completed"]
    for c in reused:
        if c.reused_from is None:
            c.reused_from = exec_id
    if overrides:
        by_seq = {c.seq: c for c in reused}
        for key, value in overrides.items():
            override = _commit_override(journal, record, owner, by_key[key], value)
            by_seq[override.seq] = override
        reused = [by_seq[k] for k in sorted(by_seq)]
    args, kwargs = _flow_inputs.call_args(flow.fn, params)
    return _execute.drive(journal, record, owner, flow, args, kwargs, calls=reused)


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
        copied.append(_flow_inputs.input_artifact(record.exec_id, store, name, encoded))
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
    override = given_call(
        exec_id=record.exec_id,
        run=record.runs,
        key=call.key,
        seq=call.seq,
        name=call.name,
        func=call.func,
        kind=call.kind,
        branch=call.branch,
        pos=call.pos,
        fingerprint=call.fingerprint,
        output=artifact,
        metadata={"override": True},
    )
    journal.commit_call(override, artifact, [], owner=owner)
    return override
