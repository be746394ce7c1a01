"""Queues: `flow.submit()` puts an execution in one for a worker; what `kitaru queues`
shows; and loading the flows a worker runs (`kitaru worker --flows ...`)."""

from __future__ import annotations

import importlib
import os
import re
import sys
import time
from collections.abc import Sequence
from typing import Any

from kitaru import _config, _execute, _flow_inputs, _loader
from kitaru._errors import InvalidInputError, KitaruUsageError

# Shared with invocations and schedules, which sit below queues: kept in _ready.py.
from kitaru._ready import check_limit, check_name, check_priority, ready_note
from kitaru.journal import ExecutionRecord, Journal, QueueRecord, current_journal, open_journal
from kitaru.journal._queues import DEFAULT_QUEUE

__all__ = [
    "check_limit",
    "check_name",
    "check_priority",
    "deployed_versions",
    "load_flows",
    "queue_view",
    "queue_views",
    "ready_note",
    "set_limits",
    "submit",
]


def submit(
    flow: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int = 0,
    idempotency_key: str | None = None,
) -> tuple[ExecutionRecord, bool]:
    """Record a new execution of `flow` waiting in `queue` for a worker; nothing runs here.
    Returns (it, True), or (the execution `idempotency_key` started before, False)."""
    from kitaru import _idempotency
    from kitaru.stacks import _resolve

    check_name(queue)
    check_priority(priority)
    _idempotency.check_key(idempotency_key)
    journal = current_journal()
    stack = _resolve.resolve(journal, flow.stack)
    if not _resolve.runs_in_process(stack):
        raise KitaruUsageError(
            f"stack {stack.name!r} runs executions on its {stack.orchestrator} orchestrator, "
            "which queues them itself; queues hold executions for `kitaru worker` on a stack "
            "that runs flows where they start (local): use flow.run() here, or "
            "`kitaru stack use local`"
        )
    target = journal if stack.journal is None else open_journal(_resolve.journal_url_for(stack))
    store_uri = stack.artifact_store or _config.artifact_store_uri()
    from kitaru.artifacts import open_store

    open_store(store_uri)  # an unusable store fails before anything is recorded
    inputs = _flow_inputs.bind_inputs(flow.fn, args, kwargs)
    found = _idempotency.earlier(target, flow.name, idempotency_key)
    if found is not None:
        return found, False
    now = time.time()
    record = _execute.new_record(
        flow,
        stack=stack.name,
        artifact_store=store_uri,
        now=now,
        owner=None,
        idempotency_key=idempotency_key,
    )
    record.status = "queued"
    record.queue = queue
    record.priority = priority
    record.metadata = ready_note(queue, now)
    holder = _idempotency.store(
        target,
        record,
        _flow_inputs.input_artifacts(
            record.exec_id, store_uri, flow.fn, inputs, allow_pickle=flow.allow_pickle
        ),
    )
    return (record, True) if holder is None else (holder, False)


# -- what a worker runs ----------------------------------------------------------------
def load_flows(specs: Sequence[str]) -> dict[str, Any]:
    """The flows named by `--flows` values, by flow name: `pkg.module` (every flow in
    it), `pkg.module:flow_name`, or a script `path/to/file.py[:flow_name]`."""
    from kitaru._checkpoint import is_flow

    found: dict[str, Any] = {}
    for spec in specs:
        target, _, attr = spec.partition(":")
        module = _load_module(spec, target)
        if attr:
            obj: Any = getattr(module, attr, None)
            if not is_flow(obj):
                raise InvalidInputError(
                    f"--flows {spec}: {target} has no flow named {attr!r}" + _listing(module)
                )
            flows = [obj]
        else:
            flows = [v for v in vars(module).values() if is_flow(v)]
            if not flows:
                raise InvalidInputError(
                    f"--flows {spec}: {target} defines no @flow; name a module or script that does"
                )
        for flow in flows:
            other = found.get(flow.name)
            if other is not None and other is not flow:
                raise InvalidInputError(
                    f"two flows are named {flow.name!r} ({other.flow_ref} and "
                    f"{flow.flow_ref}); a worker finds flows by name: rename one "
                    "(@flow(name=...))"
                )
            found[flow.name] = flow
    return found


def _listing(module: Any) -> str:
    from kitaru._checkpoint import is_flow

    names = sorted(k for k, v in vars(module).items() if is_flow(v))
    return f" (its flows: {', '.join(names)})" if names else " (it defines no @flow)"


def _load_module(spec: str, target: str) -> Any:
    if target.endswith(".py") or os.sep in target:
        path = os.path.abspath(target)
        if not os.path.isfile(path):
            raise InvalidInputError(f"--flows {spec}: no such file {path}")
        record = ExecutionRecord(
            exec_id="",
            flow="",
            status="",
            created_at=0,
            updated_at=0,
            flow_file=path,
            import_path=os.path.dirname(path),
        )
        return _loader._load_script(record)
    if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", target):
        raise InvalidInputError(
            f"--flows {spec}: use a module (pkg.module), a module and flow "
            "(pkg.module:flow_name) or a script (path/to/file.py)"
        )
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m` would
    token = _loader.loading.set(True)
    try:
        return importlib.import_module(target)
    except _loader.StopImport:
        return sys.modules.get(target) or _loader._import_module(
            ExecutionRecord(exec_id="", flow="", status="", created_at=0, updated_at=0),
            target,
        )
    except ImportError as exc:
        raise InvalidInputError(
            f"--flows {spec}: cannot import {target} ({exc}); run the command from the "
            "project's directory with its environment active"
        ) from None
    finally:
        _loader.loading.reset(token)


def deployed_versions(
    journal: Journal, flows: dict[str, Any], hashes: dict[tuple[str, str], str | None]
) -> list[str]:
    """`name@version` for each deployed version whose snapshot is the code this worker
    loaded: the project around the loaded flow's file holds the same files, byte for
    byte, as the version's image (its recorded source hash). A worker runs an invoked
    deployment only then: a queued invocation never runs other code than it names.

    `hashes` (by project root and builder) is the worker's for its whole life: each
    project is hashed once, as the worker starts, so a file edited afterwards (and
    deployed) is not taken for the code the worker imported before."""
    from pathlib import Path

    from kitaru.deployments._deploy import project_manifest, source_hash

    found: list[str] = []
    for name, flow in flows.items():
        if not flow.flow_file:
            continue
        here = os.path.abspath(flow.flow_file)
        for deployment in journal.list_deployments(name):
            if not deployment.flow_file or deployment.deleted_at is not None:
                continue
            rel = os.path.normpath(deployment.flow_file)
            if not here.endswith(os.sep + rel):
                continue
            root = here[: -len(rel) - 1] or os.sep
            key = (root, deployment.builder)
            if key not in hashes:
                try:
                    hashes[key] = source_hash(project_manifest(deployment, journal, Path(root)))
                except Exception:  # an unusable builder or project: no version matches
                    hashes[key] = None
            if hashes[key] == deployment.source_hash:
                found.append(f"{name}@{deployment.version}")
    return found


# -- what `kitaru queues` shows -------------------------------------------------------
def queue_views(journal: Journal) -> list[dict[str, Any]]:
    now = time.time()
    counts = journal.queue_counts(now)
    limits = {q.name: q for q in journal.list_queues()}
    workers = [w for w in journal.list_workers() if w.stopped_at is None]
    names = sorted({DEFAULT_QUEUE, *counts, *limits, *(q for w in workers for q in w.queues)})
    return [_view(n, counts.get(n, {}), limits.get(n), workers, now) for n in names]


def queue_view(journal: Journal, name: str) -> dict[str, Any]:
    check_name(name)
    for view in queue_views(journal):
        if view["name"] == name:
            return view
    return _view(name, {}, None, [], time.time())


def _view(
    name: str,
    counts: dict[str, Any],
    limits: QueueRecord | None,
    workers: list[Any],
    now: float,
) -> dict[str, Any]:
    oldest = counts.get("oldest")
    return {
        "name": name,
        "depth": counts.get("depth", 0),
        "running": counts.get("running", 0),
        "started_last_minute": counts.get("started", 0),
        "oldest_waiting_seconds": round(now - oldest, 1) if oldest else None,
        "concurrency": limits.concurrency if limits else None,
        "rate_per_minute": limits.rate_per_minute if limits else None,
        "workers": [
            {
                "name": w.name,
                "concurrency": w.concurrency,
                "running": w.running,
                "seen_seconds_ago": round(now - w.seen_at, 1),
            }
            for w in workers
            if name in w.queues
        ],
    }


def set_limits(
    journal: Journal, name: str, *, concurrency: int | None, rate_per_minute: int | None
) -> QueueRecord:
    check_name(name)
    check_limit(concurrency, "--concurrency")
    check_limit(rate_per_minute, "--rate")
    now = time.time()
    existing = journal.get_queue(name)
    record = QueueRecord(
        name=name,
        concurrency=concurrency,
        rate_per_minute=rate_per_minute,
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    journal.put_queue(record)
    return record
