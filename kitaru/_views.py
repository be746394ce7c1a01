"""Journal records as plain JSON-ready dicts: what `--json`, the client and the server show."""

from __future__ import annotations

import time
from typing import Any

# A listing reads only the summaries: the result's bytes and decoding, and the
# traceback of a failed flow, are imported by the detail that shows them.
from kitaru import _lease, _ready
from kitaru.journal import (
    ArtifactRecord,
    CallRecord,
    ExecutionRecord,
    ExecutionSnapshot,
    Journal,
    WaitRecord,
)


def iso(ts: float | None) -> str | None:
    """UTC ISO 8601 with milliseconds (`2026-11-27T09:53:56.123Z`); None for no time, or
    for a value that is not one (a damaged row must not break a listing)."""
    if ts is None or not isinstance(ts, int | float) or not -1e15 < ts < 1e15:
        return None
    whole = int(ts)
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((ts - whole) * 1000):03d}Z"
    )


def artifact_view(a: ArtifactRecord) -> dict[str, Any]:
    return {
        "artifact_id": a.artifact_id,
        "exec_id": a.exec_id,
        "name": a.name,
        "version": a.version,
        "producer": a.producer,
        "producer_key": a.producer_key,
        "type": a.type_ref,
        "serializer": a.serializer,
        "content_hash": a.content_hash,
        "size": a.size,
        "uri": a.uri,
        "inline": a.uri is None,
        "created_at": iso(a.created_at),
        "metadata": a.metadata,
    }


def call_view(c: CallRecord, current_run: int) -> dict[str, Any]:
    if c.metadata.get("cache"):
        origin = "cache"  # reused_from names the execution it came from
    elif c.reused_from:
        origin = "reused"
    elif c.metadata.get("override"):
        origin = "override"
    elif c.status == "failed":
        origin = "failed"
    elif c.run == current_run:
        origin = "ran"
    else:
        origin = "journal"
    return {
        "key": c.key,
        "name": c.name,
        "kind": c.kind,
        "position": c.seq,
        "branch": c.branch,
        "branch_position": c.pos if c.pos is not None else c.seq,
        "status": c.status,
        "origin": origin,
        "run": c.run,
        "attempts": c.attempts,
        "started_at": iso(c.started_at),
        "ended_at": iso(c.ended_at),
        "duration_s": round(c.ended_at - c.started_at, 6),
        "output": artifact_view(c.output) if c.output else None,
        "reused_from": c.reused_from,
        "error": c.error,
        "function": c.func,
        "metadata": c.metadata,
    }


def parallel_groups(calls: list[CallRecord]) -> list[dict[str, Any]]:
    """Calls that ran in parallel, as groups of consecutive calls (in journal order) of one
    run: calls made in tasks and threads the flow started between two calls of the flow
    body, and calls whose time spans overlap (an agent's parallel tool calls). Each group
    gives the index of its first and last call in `calls`, its wall time and the sum of
    its calls' durations: a fan-out of 20 calls of 0.1 s on 4 threads is one group of
    0.5 s wall time, not 2 s."""
    groups: list[dict[str, Any]] = []
    i = 0
    while i < len(calls):
        first = calls[i]
        end = first.ended_at
        branched = first.branch != ""
        j = i
        while j + 1 < len(calls):
            nxt = calls[j + 1]
            overlaps = nxt.started_at < end
            # Calls a replay copied keep their source's times: never one group with the
            # calls that ran in it.
            same_run = nxt.run == first.run and nxt.reused_from == first.reused_from
            if not same_run or not (overlaps or (branched and nxt.branch != "")):
                break
            branched = branched and nxt.branch != ""
            end = max(end, nxt.ended_at)
            j += 1
        members = calls[i : j + 1]
        work = sum(c.ended_at - c.started_at for c in members)
        wall = end - first.started_at
        if j > i and (wall < work or len({c.branch for c in members}) > 1):
            groups.append(
                {
                    "first": i,
                    "last": j,
                    "calls": j - i + 1,
                    "started_at": iso(first.started_at),
                    "wall_s": round(wall, 6),
                    "sum_s": round(work, 6),
                }
            )
        i = j + 1
    return groups


def checkpoints_view(calls: list[CallRecord], current_run: int) -> dict[str, Any]:
    """The timeline: every call (`call_view`, with `group`: the index of the parallel
    group it is in, or None) and the parallel groups."""
    views = [call_view(c, current_run) for c in calls]
    groups = parallel_groups(calls)
    for view in views:
        view["group"] = None
    for n, g in enumerate(groups):
        for view in views[g["first"] : g["last"] + 1]:
            view["group"] = n
    return {"checkpoints": views, "parallel_groups": groups}


def wait_view(w: WaitRecord, now: float) -> dict[str, Any]:
    timed_out = w.status == "pending" and w.timeout_at is not None and now >= w.timeout_at
    sleep = bool(w.metadata.get("sleep"))
    status = "timed_out" if timed_out else w.status
    if sleep:
        status = {"pending": "sleeping", "timed_out": "due", "answered": "woke"}[status]
    return {
        "exec_id": w.exec_id,
        "key": w.key,
        "name": w.name,
        "kind": "sleep" if sleep else "wait",
        "question": w.question,
        "schema": w.schema,
        "status": status,
        "since": iso(w.created_at),
        "timeout_at": iso(w.timeout_at),
        "default": w.default if w.has_default else None,
        "answered_at": iso(w.answered_at),
        "value_artifact": w.value_artifact,
        "metadata": w.metadata,
    }


def result_value(
    journal: Journal, e: ExecutionRecord, artifact: ArtifactRecord | None = None
) -> tuple[bool, Any]:
    """The flow's return value as JSON, without importing user code: (available, value).
    `artifact`: its record, when already read."""
    if e.result_artifact is None:
        return False, None
    if artifact is None:
        artifact = journal.get_artifact(e.result_artifact)
    if artifact is None:
        return False, None
    from kitaru import _serialize
    from kitaru._artifact_io import read_bytes

    try:
        return _serialize.to_jsonable(artifact.serializer, read_bytes(artifact, e.artifact_store))
    except Exception:
        return False, None


def execution_view(journal: Journal, e: ExecutionRecord, *, detail: bool = True) -> dict[str, Any]:
    """The summary of `e`; with `detail`, the execution as one snapshot shows it (its
    record read again with its calls, waits and result: kitaru/journal/_snapshot.py)."""
    snap = journal.execution_snapshot(e.exec_id) if detail else None
    if snap is not None:
        e = snap.execution
    elif detail:  # deleted since `e` was read
        snap = ExecutionSnapshot(e, [], [], [], None)
    status = _lease.effective_status(e.status, e.owner, e.lease_until)
    view: dict[str, Any] = {
        "exec_id": e.exec_id,
        "flow": e.flow,
        "status": status,
        "created_at": iso(e.created_at),
        "ended_at": iso(e.ended_at),
        "updated_at": iso(e.updated_at),
        "stack": e.stack,
        "orchestrator": e.orchestrator,
        "run_id": e.run_id,
        "runs": e.runs,
        "replayed_from": e.replayed_from,
        "replay_point": e.replay_point,
        "error": e.error,
        "metadata": e.metadata,
        "deployment_version": e.deployment_version,
        "invocation_id": e.invocation_id,
        # The key it was started with (`idempotency_key=`), if any: one execution per key.
        "idempotency_key": e.idempotency_key,
        "queue": e.queue,
        "priority": e.priority,
        # The worker that claimed it last (`kitaru worker`), None if it never ran in one.
        "worker": e.worker,
        # The schedule and tick that started it (kitaru/_schedules.py), if any.
        "schedule": (e.metadata or {}).get("schedule"),
    }
    if status == "running" and e.owner:
        # Where it runs (host:pid:start), never the whole owner token: that token is
        # what the running process presents to write, and a view is read by anyone.
        view["owner"] = e.owner.rpartition(":")[0] or "?"
    ready = _ready.note(e)
    if ready is not None:
        view["ready"] = ready
    if snap is not None:
        ok, value = result_value(journal, e, snap.result)
        view["result"] = value if ok else None
        view["result_artifact"] = e.result_artifact
        view.update(checkpoints_view(snap.calls, e.runs))
        now = time.time()
        waits = snap.waits
        view["waits"] = [wait_view(w, now) for w in waits]
        if status == "waiting":
            from kitaru._sleep import sleeping_until

            view["sleeping_until"] = iso(sleeping_until(waits))
        # The full traceback of a failed flow (kitaru/_tracebacks.py); None otherwise.
        from kitaru import _tracebacks

        view["traceback"] = (
            _tracebacks.find(snap.logs, e.exec_id, e.runs) if status == "failed" else None
        )
        view["flow_ref"] = e.flow_ref
        view["flow_file"] = e.flow_file
        view["artifact_store"] = e.artifact_store
    return view
