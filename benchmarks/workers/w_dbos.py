"""DBOS Transact with its SQLite system database (its default configuration on SQLite:
rollback journal, synchronous=FULL, so every step commit is flushed to disk).

One `@DBOS.workflow` looping over an `@DBOS.step`; each step's output is recorded
before the workflow goes on.

The queue tasks (`queue_*`, for benchmarks/queues.py) take the system database from
BENCH_DBOS_URL (SQLite or PostgreSQL) and the notification listener's polling interval
from BENCH_DBOS_NOTIFY_POLL (DBOS's default, 1 s, when unset).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

T_START = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from dbos import DBOS, DBOSClient, SetWorkflowID  # noqa: E402

T_IMPORTED = time.perf_counter()

RECOVERY_STEPS, CRASH_AT = 100, 90
DB_URL = os.environ.get("BENCH_DBOS_URL") or (
    f"sqlite:///{os.path.join(os.environ['BENCH_DATA'], 'dbos_sys.sqlite')}"
)
CONFIG: dict[str, object] = {"name": "bench", "system_database_url": DB_URL, "log_level": "ERROR"}
if os.environ.get("BENCH_DBOS_NOTIFY_POLL"):
    CONFIG["notification_listener_polling_interval_sec"] = float(
        os.environ["BENCH_DBOS_NOTIFY_POLL"]
    )
DBOS(config=CONFIG)


@DBOS.step()
def step(kind: str, i: int) -> dict[str, object]:
    return _common.payload(kind, i)


@DBOS.workflow()
def steps(kind: str, n: int) -> int:
    for i in range(n):
        step(kind, i)
    return n


@DBOS.step()
def recover_step(i: int) -> dict[str, object]:
    _common.StepLog(os.environ["BENCH_STEPLOG"], os.environ["BENCH_PHASE"]).ran(i)
    if os.environ["BENCH_PHASE"] == "crash" and i == CRASH_AT:
        os._exit(1)
    return _common.payload("small", i)


@DBOS.workflow()
def recovery(n: int) -> int:
    for i in range(1, n + 1):
        recover_step(i)
    return n


@DBOS.step()
def before_wait() -> int:
    return 1


@DBOS.workflow()
def approval() -> bool:
    before_wait()
    answer = DBOS.recv("approve", timeout_seconds=120)
    _common.write_marker(os.environ["BENCH_MARKER"])
    return bool(answer)


@DBOS.workflow()
def q_empty() -> int:
    return 0


@DBOS.workflow()
def q_ten() -> int:
    return sum(q_step(i) for i in range(10))


@DBOS.step()
def q_step(i: int) -> int:
    return i


@DBOS.workflow()
def q_gate() -> bool:
    q_step(-1)
    answer = DBOS.recv("ok", timeout_seconds=120)
    q_step(1)  # the step whose commit ends "send -> next step"
    return bool(answer)


def run_steps(kind: str, n: int, rid: str) -> None:
    with SetWorkflowID(rid):
        assert steps(kind, n) == n


def main() -> None:
    task, spec = _common.args()
    logging.getLogger("dbos").setLevel(logging.ERROR)
    if task == "wait_answer":
        # A client process, as an outside system would send it: no DBOS app launched.
        t0 = time.time()
        client = DBOSClient(system_database_url=DB_URL)
        client.send(spec["exec_id"], True, "approve")
        client.destroy()
        _common.result({"t0": t0})
        return
    if task.startswith("queue_"):
        _common.result(queue_task(task, spec))
        DBOS.destroy()
        return
    t0 = time.perf_counter()
    DBOS.launch()  # recovers PENDING workflows of this application version by itself
    launched = time.perf_counter()
    if task == "overhead":
        _common.result(_common.overhead(run_steps, spec, os.environ["BENCH_DATA"]))
    elif task == "crash":
        with SetWorkflowID(spec["exec_id"]):
            recovery(RECOVERY_STEPS)
        sys.exit(3)
    elif task == "resume":
        handle = DBOS.retrieve_workflow(spec["exec_id"])
        assert handle.get_result(polling_interval_sec=0.005) == RECOVERY_STEPS
        done = time.perf_counter()
        _common.result(
            {
                "import_s": T_IMPORTED - T_START,
                "launch_s": launched - t0,
                "recover_to_done_s": done - t0,
                "process_to_done_s": done - T_START,
            }
        )
    elif task == "replay":
        out: dict[str, list[float]] = {}
        for n in [*spec.get("warmup", []), *spec["ns"]]:
            source = f"replay-src-{n}-{time.time_ns()}"
            run_steps("small", n, source)
            ids = [
                s["function_id"]
                for s in DBOS.list_workflow_steps(source)
                if s["function_name"].endswith("step")
            ]
            times = []
            for _ in range(spec["inner"]):
                t1 = time.perf_counter()
                handle = DBOS.fork_workflow(source, ids[-1])
                assert handle.get_result(polling_interval_sec=0.001) == n
                times.append(time.perf_counter() - t1)
            out[str(n)] = times
        _common.result({"totals_s": out})
    elif task == "wait_start":
        with SetWorkflowID(spec["exec_id"]):
            handle = DBOS.start_workflow(approval)
        # The workflow parks in recv(); tell the harness, then stay alive: DBOS delivers
        # a message to a workflow that a live process is running.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            steps_done = DBOS.list_workflow_steps(spec["exec_id"])
            if any(s["function_name"].endswith("before_wait") for s in steps_done):
                break
            time.sleep(0.01)
        time.sleep(0.5)  # past the step, into recv()
        print("WAITING", flush=True)
        assert handle.get_result(polling_interval_sec=0.005) is True
        _common.result({})
    else:
        raise SystemExit(f"unknown task {task!r}")
    DBOS.destroy()


# -- queues -----------------------------------------------------------------------------
# queue_enqueue: N workflows onto a queue from a process that dequeues nothing.
# queue_worker: a process that launches DBOS with the queue (worker_concurrency from the
#   spec) and dequeues until the queue is drained, or until spec["stop_file"] exists.
# queue_span: first dequeue and last end, read from workflow_status.
# queue_answers: one gate workflow at a time is enqueued; once it waits in recv(), a
#   DBOSClient sends it a message; the times of its recv() and next step are read from
#   operation_outputs.
FLOWS = {"empty": q_empty, "ten": q_ten, "gate": q_gate}


def queue_task(task: str, spec: dict[str, Any]) -> dict[str, Any]:
    if task == "queue_worker":
        DBOS.listen_queues([spec["queue"]])
    else:
        DBOS.listen_queues([])  # this process only enqueues, sends and reads
    DBOS.launch()
    # polling_s None: the queue polls at DBOS's default interval.
    poll = {} if spec["polling_s"] is None else {"polling_interval_sec": spec["polling_s"]}
    queue = DBOS.register_queue(
        spec["queue"], worker_concurrency=spec["concurrency"], on_conflict="never_update", **poll
    )
    if task == "queue_enqueue":
        for _ in range(spec["n"]):
            queue.enqueue(FLOWS[spec["flow"]])
        return {}
    if task == "queue_worker":
        stop = spec.get("stop_file")
        # Checked twice a second: the span is read from the tables, not from when this
        # process exits, and a busier check would contend for SQLite's lock.
        while not os.path.exists(stop) if stop else _unfinished(spec["queue"]):
            time.sleep(0.5)
        return {}
    if task == "queue_span":
        return _span(spec["queue"])
    if task == "queue_answers":
        return _answers(queue, spec["answers"])
    raise SystemExit(f"unknown task {task!r}")


def _sql(query: str, **params: Any) -> list[Any]:
    import sqlalchemy as sa
    from dbos._dbos import _get_dbos_instance

    schema = "" if DB_URL.startswith("sqlite") else "dbos."
    engine = _get_dbos_instance()._sys_db.engine  # the launched DBOS's own connections
    with engine.connect() as conn:
        return list(conn.execute(sa.text(query.replace("dbos.", schema)), params))


def _unfinished(queue: str) -> bool:
    [(count,)] = _sql(
        "SELECT count(*) FROM dbos.workflow_status WHERE queue_name = :q "
        "AND status IN ('ENQUEUED', 'PENDING')",
        q=queue,
    )
    return bool(count)


def _span(queue: str) -> dict[str, Any]:
    # started_at_epoch_ms is set by the dequeue, completed_at by the final status write;
    # both are the database's clock (whole seconds on SQLite before Python 3.12).
    [(n, first, last, statuses)] = _sql(
        "SELECT count(*), min(started_at_epoch_ms), max(completed_at), "
        "count(DISTINCT status) FROM dbos.workflow_status WHERE queue_name = :q",
        q=queue,
    )
    return {"n": n, "first_dequeue_ms": first, "last_end_ms": last, "statuses": statuses}


def _answers(queue: Any, count: int) -> dict[str, Any]:
    client = DBOSClient(system_database_url=DB_URL)
    to_recv, to_step = [], []
    for _ in range(count):
        handle = queue.enqueue(q_gate)
        wid = handle.get_workflow_id()
        # recv() records its timeout as a DBOS.sleep operation when it starts waiting.
        deadline = time.monotonic() + 120
        while not _step_done(wid, "DBOS.sleep"):
            if time.monotonic() > deadline:
                raise SystemExit(f"{wid} never reached recv()")
            time.sleep(0.01)
        time.sleep(0.3)  # well inside recv()
        sent_ms = time.time() * 1000
        client.send(wid, True, "ok")
        assert handle.get_result(polling_interval_sec=0.01) is True
        to_recv.append((_step_done(wid, "DBOS.recv") - sent_ms) / 1000)
        to_step.append((_step_done(wid, "q_step") - sent_ms) / 1000)
    client.destroy()
    return {"to_recv_s": to_recv, "to_next_step_s": to_step}


def _step_done(wid: str, name: str) -> Any:
    """When the last operation called `name` committed: the worker's own clock (time.time()
    in milliseconds), on every backend."""
    [(done,)] = _sql(
        "SELECT max(completed_at_epoch_ms) FROM dbos.operation_outputs "
        "WHERE workflow_uuid = :w AND function_name = :f",
        w=wid,
        f=name,
    )
    return done


if __name__ == "__main__":
    main()
