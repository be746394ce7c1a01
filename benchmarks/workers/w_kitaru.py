"""Kitaru (this repository) through its public API only: `@flow`, `@checkpoint`,
`flow.run()`, `kitaru.wait()` and `KitaruClient`. The harness sets KITARU_HOME (a fresh
directory per process) and KITARU_DURABILITY.

The flows live at module level with no side effects, because resume and replay import
this file again in another process.
"""

from __future__ import annotations

import os
import sys
import time

T_START = time.perf_counter()
# Resume and replay load this file by path in another process: make `_common` importable.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common  # noqa: E402

import kitaru  # noqa: E402
from kitaru import checkpoint, flow  # noqa: E402

T_IMPORTED = time.perf_counter()

RECOVERY_STEPS, CRASH_AT = 100, 90


@checkpoint
def step(kind: str, i: int) -> dict[str, object]:
    return _common.payload(kind, i)


@flow
def steps(kind: str, n: int) -> int:
    for i in range(n):
        step(kind, i)
    return n


@checkpoint
def recover_step(i: int) -> dict[str, object]:
    _common.StepLog(os.environ["BENCH_STEPLOG"], os.environ["BENCH_PHASE"]).ran(i)
    if os.environ["BENCH_PHASE"] == "crash" and i == CRASH_AT:
        os._exit(1)
    return _common.payload("small", i)


@flow
def recovery(n: int) -> int:
    for i in range(1, n + 1):
        recover_step(i)
    return n


@checkpoint
def before_wait() -> int:
    return 1


@flow
def approval() -> bool:
    before_wait()
    answer = kitaru.wait("approve", schema=bool, question="go on?")
    _common.write_marker(os.environ["BENCH_MARKER"])
    return answer


@flow
def fanned(n: int, concurrency: int) -> int:
    return len(step.map(["small"] * n, range(n), concurrency=concurrency))


def fanout(spec: dict[str, int]) -> dict[str, list[float]]:
    """Per-call cost of `.map` against the same calls made one after another, and against
    the same function on a bare thread pool (no durability), in one process."""
    from concurrent.futures import ThreadPoolExecutor

    n, conc, reps = spec["n"], spec["concurrency"], spec["reps"]
    fanned.run(10, conc)
    steps.run("small", 10)
    out: dict[str, list[float]] = {"map": [], "sequential": [], "bare_threads": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        assert fanned.run(n, conc).status == "completed"
        out["map"].append((time.perf_counter() - t0) / n)
        t0 = time.perf_counter()
        assert steps.run("small", n).status == "completed"
        out["sequential"].append((time.perf_counter() - t0) / n)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(conc) as pool:
            list(pool.map(_common.payload, ["small"] * n, range(n)))
        out["bare_threads"].append((time.perf_counter() - t0) / n)
    return out


def run_steps(kind: str, n: int, _rid: str) -> None:
    handle = steps.run(kind, n)
    assert handle.status == "completed", handle.status


def latest_exec_id() -> str:
    return kitaru.KitaruClient().executions.list(limit=1)[0].exec_id


def main() -> None:
    task, spec = _common.args()
    if task == "overhead":
        res = _common.overhead(run_steps, spec, os.environ["KITARU_HOME"])
        _common.result(res)
    elif task == "fanout":
        _common.result(fanout(spec))
    elif task == "crash":
        recovery.run(RECOVERY_STEPS)
        sys.exit(3)  # the crash in step 90 never lets it get here
    elif task == "exec_id":
        _common.result({"exec_id": latest_exec_id()})
    elif task == "resume":
        exec_id = latest_exec_id()
        t0 = time.perf_counter()
        execution = kitaru.KitaruClient().executions.resume(exec_id)
        t1 = time.perf_counter()
        assert execution.status == "completed", execution.status
        _common.result(
            {
                "import_s": T_IMPORTED - T_START,
                "recover_to_done_s": t1 - t0,
                "process_to_done_s": t1 - T_START,
            }
        )
    elif task == "replay":
        client = kitaru.KitaruClient()
        out: dict[str, list[float]] = {}
        cpu: dict[str, list[float]] = {}  # this process's CPU time: steadier on a busy machine
        for n in [*spec.get("warmup", []), *spec["ns"]]:
            source = steps.run("small", n)
            last = "step" if n == 1 else f"step#{n}"
            times, cpu_times = [], []
            for _ in range(spec["inner"]):
                t0, c0 = time.perf_counter(), time.process_time()
                replayed = client.executions.replay(source.exec_id, from_=last)
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
                assert replayed.status == "completed", replayed.status
                ran = [c for c in replayed.checkpoints if c["origin"] == "ran"]
                assert len(ran) == 1, f"replay from {last} ran {len(ran)} checkpoints"
            out[str(n)], cpu[str(n)] = times, cpu_times
        _common.result({"totals_s": out, "cpu_s": cpu})
    elif task == "wait_start":
        handle = approval.run()
        assert handle.status == "waiting", handle.status
        _common.result({"exec_id": handle.exec_id})
    elif task == "wait_answer":
        exec_id = spec["exec_id"]
        t0 = time.time()
        execution = kitaru.KitaruClient().executions.input(exec_id, "approve", True)
        assert execution.status == "completed", execution.status
        _common.result({"t0": t0, "import_s": T_IMPORTED - T_START})
    else:
        raise SystemExit(f"unknown task {task!r}")


if __name__ == "__main__":
    main()
