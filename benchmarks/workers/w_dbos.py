"""DBOS Transact with its SQLite system database (its default configuration on SQLite:
rollback journal, synchronous=FULL, so every step commit is flushed to disk).

One `@DBOS.workflow` looping over an `@DBOS.step`; each step's output is recorded
before the workflow goes on.
"""

from __future__ import annotations

import logging
import os
import sys
import time

T_START = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402
from dbos import DBOS, DBOSClient, SetWorkflowID  # noqa: E402

T_IMPORTED = time.perf_counter()

RECOVERY_STEPS, CRASH_AT = 100, 90
DB_URL = f"sqlite:///{os.path.join(os.environ['BENCH_DATA'], 'dbos_sys.sqlite')}"

DBOS(config={"name": "bench", "system_database_url": DB_URL, "log_level": "ERROR"})


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


if __name__ == "__main__":
    main()
