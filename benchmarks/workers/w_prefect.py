"""Prefect 3 in its zero-config local mode: no PREFECT_API_URL, so each process starts a
temporary API server (SQLite in WAL mode with synchronous=NORMAL under PREFECT_HOME);
task results go to local files (written without fsync).

Variant `persist`: `@task(persist_result=True)`, the setting that makes a crashed run's
results reusable. Variant `default`: a bare `@task`.
Prefect has no resume of a crashed run nor replay from a step: both are a new run of
the flow whose tasks hit the result cache (cache_policy=INPUTS+TASK_SOURCE).
"""

from __future__ import annotations

import logging
import os
import sys
import time

T_START = time.perf_counter()
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("PREFECT_HOME", os.path.join(os.environ["BENCH_DATA"], "prefect-home"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import _common  # noqa: E402
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import INPUTS, TASK_SOURCE  # noqa: E402

T_IMPORTED = time.perf_counter()

RECOVERY_STEPS, CRASH_AT = 100, 90


@task(persist_result=True)
def step_persist(kind: str, i: int) -> dict[str, object]:
    return _common.payload(kind, i)


@task
def step_default(kind: str, i: int) -> dict[str, object]:
    return _common.payload(kind, i)


@flow(persist_result=True)
def steps_persist(kind: str, n: int, rid: str) -> int:
    for i in range(n):
        step_persist(kind, i)
    return n


@flow
def steps_default(kind: str, n: int, rid: str) -> int:
    for i in range(n):
        step_default(kind, i)
    return n


@task(persist_result=True, cache_policy=INPUTS + TASK_SOURCE)
def cached_step(i: int, tag: str) -> dict[str, object]:
    phase = os.environ.get("BENCH_PHASE")
    if phase:
        _common.StepLog(os.environ["BENCH_STEPLOG"], phase).ran(i)
        if phase == "crash" and i == CRASH_AT:
            os._exit(1)
    return _common.payload("small", i)


@flow(persist_result=True)
def cached_steps(n: int, tag: str, fresh_from: int, fresh_tag: str) -> int:
    for i in range(1, n + 1):
        cached_step(i, tag if i < fresh_from else fresh_tag)
    return n


def main() -> None:
    task_name, spec = _common.args()
    logging.getLogger("prefect").setLevel(logging.WARNING)
    if task_name == "overhead":
        wf = steps_persist if spec.get("variant", "persist") == "persist" else steps_default

        def run_one(kind: str, n: int, rid: str) -> None:
            assert wf(kind, n, rid) == n

        # Prefect reports task states to its API server in the background: let it settle
        # before the bytes on disk are counted.
        res = _common.overhead(
            run_one, spec, os.environ["BENCH_DATA"], flush=lambda: time.sleep(1.0)
        )
        _common.result(res)
    elif task_name in ("crash", "resume"):
        tag = spec["exec_id"]
        t0 = time.perf_counter()
        done_n = cached_steps(RECOVERY_STEPS, tag, RECOVERY_STEPS + 1, tag)
        done = time.perf_counter()
        if task_name == "crash":
            sys.exit(3)
        assert done_n == RECOVERY_STEPS
        _common.result(
            {
                "import_s": T_IMPORTED - T_START,
                "launch_s": 0.0,
                "recover_to_done_s": done - t0,
                "process_to_done_s": done - T_START,
            }
        )
    elif task_name == "replay":
        out: dict[str, list[float]] = {}
        for n in [*spec.get("warmup", []), *spec["ns"]]:
            tag = f"replay-src-{n}-{time.time_ns()}"
            cached_steps(n, tag, n + 1, tag)
            times = []
            for r in range(spec["inner"]):
                t1 = time.perf_counter()
                # Steps 1..n-1 come from the result cache; step n runs with a new input.
                assert cached_steps(n, tag, n, f"{tag}-again-{r}") == n
                times.append(time.perf_counter() - t1)
            out[str(n)] = times
        _common.result({"totals_s": out})
    else:
        raise SystemExit(f"unknown task {task_name!r}")


if __name__ == "__main__":
    main()
