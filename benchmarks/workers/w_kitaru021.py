"""Kitaru 0.21.0, the last release built on ZenML, on its default local stack (ZenML's
SQLite store: rollback journal, synchronous=FULL; local artifact store files).

HOME points into the run's data directory, so ZenML's state is fresh and private.
"""

from __future__ import annotations

import os
import sys
import time

T_START = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

from kitaru import KitaruClient, checkpoint, flow  # noqa: E402

T_IMPORTED = time.perf_counter()

RECOVERY_STEPS, CRASH_AT = 100, 90


@checkpoint
def step(kind: str, i: int) -> dict[str, object]:
    return _common.payload(kind, i)


@flow(cache=False)
def steps(kind: str, n: int, rid: str) -> int:
    for i in range(n):
        step(kind, i)
    return n


@checkpoint
def recover_step(i: int) -> dict[str, object]:
    _common.StepLog(os.environ["BENCH_STEPLOG"], os.environ["BENCH_PHASE"]).ran(i)
    if os.environ["BENCH_PHASE"] == "crash" and i == CRASH_AT:
        os._exit(1)
    return _common.payload("small", i)


@flow(cache=False)
def recovery(n: int) -> int:
    for i in range(1, n + 1):
        recover_step(i)
    return n


def run_steps(kind: str, n: int, rid: str) -> None:
    assert steps.run(kind, n, rid).wait() == n


def main() -> None:
    task, spec = _common.args()
    if task == "overhead":
        _common.result(_common.overhead(run_steps, spec, os.environ["BENCH_DATA"]))
    elif task == "crash":
        recovery.run(RECOVERY_STEPS).wait()
        sys.exit(3)
    elif task == "resume":
        client = KitaruClient()
        exec_id = client.executions.latest().exec_id
        t0 = time.perf_counter()
        # 0.21 has no resume of a killed run: `retry` is its same-execution recovery, and
        # it refuses anything but a failed execution. What it says is the result.
        try:
            client.executions.retry(exec_id)
        except Exception as exc:
            _common.result({"unsupported": f"{type(exc).__name__}: {exc}".splitlines()[0]})
            return
        execution = client.executions.get(exec_id)
        done = time.perf_counter()
        _common.result(
            {
                "import_s": T_IMPORTED - T_START,
                "recover_to_done_s": done - t0,
                "process_to_done_s": done - T_START,
                "status": str(execution.status),
            }
        )
    elif task == "replay":
        client = KitaruClient()
        out: dict[str, list[float]] = {}
        for n in spec["ns"]:
            source = steps.run("small", n, f"replay-src-{n}")
            source.wait()
            calls = client.executions.get(source.exec_id).checkpoints
            last = calls[-1].name
            times = []
            for _ in range(spec["inner"]):
                t1 = time.perf_counter()
                client.executions.replay(source.exec_id, at=last, wait=True)
                times.append(time.perf_counter() - t1)
            out[str(n)] = times
        _common.result({"totals_s": out})
    else:
        raise SystemExit(f"unknown task {task!r}")


if __name__ == "__main__":
    main()
