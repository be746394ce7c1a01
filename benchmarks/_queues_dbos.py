"""The DBOS Transact side of the queue suite (benchmarks/queues.py): the same workloads
through `DBOS.register_queue(name, worker_concurrency=8)`, in DBOS's own venv.

- **throughput**: one process enqueues N workflows (`queue.enqueue`, after
  `DBOS.listen_queues([])` so it dequeues none), then two processes launch DBOS
  listening to that queue and run until it is drained. Executions per second =
  N / (last `completed_at` - first `started_at_epoch_ms`) from DBOS's `workflow_status`:
  the dequeue and the final status write, both stamped by the database.
- **answer to running**: a workflow is enqueued, runs a step and waits in
  `DBOS.recv`; a `DBOSClient` sends it a message; times from just before the send to
  the commit of `recv` and of the step after it (`operation_outputs`). One at a time,
  with the two workers idle, like Kitaru's.

Each configuration runs on a fresh system database: SQLite (DBOS's default) or a new
PostgreSQL database.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import _envs
from benchmarks._run import call, product_env

# DBOS's defaults: a queue polls every 1 s (`register_queue(polling_interval_sec=1.0)`),
# and on SQLite a waiting recv() learns of a message from a listener that polls every
# 1 s (`notification_listener_polling_interval_sec`); on PostgreSQL LISTEN/NOTIFY wakes it.
CONFIGS: dict[str, float | None] = {"dbos": None, "dbos-poll-0.1": 0.1}
LABELS = {
    "dbos": "DBOS 3.4.0, default polling (1 s)",
    "dbos-poll-0.1": "DBOS 3.4.0, polling 0.1 s",
}


def ready(install: bool) -> bool:
    """Whether DBOS's venv is there (made now if installing is allowed)."""
    try:
        _envs.ensure("dbos", install=install)
    except SystemExit:
        return False
    return True


def measure(config: str, url: str | None, where: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Throughput of both flows and the answer latency on one fresh system database
    (`url` None: DBOS's SQLite file under `where`)."""
    poll = CONFIGS[config]
    where.mkdir(parents=True, exist_ok=True)
    extra = {"BENCH_DBOS_URL": url or f"sqlite:///{where / 'dbos_sys.sqlite'}"}
    if poll is not None:
        extra["BENCH_DBOS_NOTIFY_POLL"] = str(poll)
    env = product_env("dbos", where, extra)
    base = {"concurrency": spec["concurrency"], "polling_s": poll}
    out: dict[str, Any] = {"polling_s": poll or 1.0}
    for flow in ("empty", "ten"):
        queue = f"{flow}-{time.monotonic_ns()}"
        q = {**base, "queue": queue}
        call("dbos", "queue_enqueue", {**q, "flow": flow, "n": spec["n"]}, env, timeout=900)
        _workers(q, env, spec["workers"])()
        span = call("dbos", "queue_span", q, env).result()
        if span["n"] != spec["n"] or span["statuses"] != 1:
            raise RuntimeError(f"DBOS {flow} on {config}: not all succeeded: {span}")
        seconds = (span["last_end_ms"] - span["first_dequeue_ms"]) / 1000
        out[flow] = {"executions_per_s": spec["n"] / seconds, "span_s": seconds}
    out["answer"] = _answers({**base, "queue": f"gate-{time.monotonic_ns()}"}, env, spec, where)
    return out


def _workers(
    q: dict[str, Any], env: dict[str, str], count: int, stop_file: Path | None = None
) -> Callable[[], None]:
    """Start `count` worker processes, each with its own executor id, which drain the
    queue or, given `stop_file`, run until it exists. Returns the wait for them, which
    raises what a worker raised."""
    errors: list[BaseException] = []
    spec = {**q, "stop_file": str(stop_file)} if stop_file else q

    def one(i: int) -> None:
        try:
            call("dbos", "queue_worker", spec, {**env, "DBOS__VMID": f"bench-{i}"}, timeout=1800)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()

    def wait() -> None:
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    return wait


def _answers(
    q: dict[str, Any], env: dict[str, str], spec: dict[str, Any], where: Path
) -> dict[str, Any]:
    stop = where / f"stop-{q['queue']}"
    wait = _workers(q, env, spec["workers"], stop_file=stop)
    try:
        got = call("dbos", "queue_answers", {**q, "answers": spec["answers"]}, env).result()
    finally:
        stop.touch()
        wait()
    return {
        **got,
        "median_to_recv_s": statistics.median(got["to_recv_s"]),
        "median_to_next_step_s": statistics.median(got["to_next_step_s"]),
    }
