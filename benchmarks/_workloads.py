"""The workloads, each run the same way for every system, interleaved run by run.

Every measurement is a new process with a new, empty data directory, so no system
profits from a warm database or cache that an earlier measurement left behind.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import _envs
from benchmarks._run import Workdir, WorkerError, call, kitaru_cli, product_env, progress, run
from benchmarks._systems import IMPORTS, System

RECOVERY_STEPS, CRASH_AT = 100, 90


@dataclass
class Settings:
    quick: bool
    rounds: int
    big_rounds: int  # rounds that also run the 1 MB payload (the slow half of a round)
    ns: dict[str, list[int]]
    budget_s: float
    import_reps: int
    recovery_reps: int
    replay_rounds: int
    replay_ns: dict[str, list[int]]
    wait_reps: int
    slow_recovery_reps: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, quick: bool, rounds: int | None = None) -> Settings:
        if quick:
            return cls(
                quick=True,
                rounds=rounds or 2,
                big_rounds=rounds or 2,
                ns={"small": [10, 100], "big": [10]},
                budget_s=20,
                import_reps=3,
                recovery_reps=1,
                replay_rounds=1,
                replay_ns={"default": [10, 100], "kitaru021": [2, 5], "prefect": [10, 30]},
                wait_reps=1,
                slow_recovery_reps={"kitaru021": 1, "prefect": 1},
            )
        return cls(
            quick=False,
            rounds=rounds or 3,
            big_rounds=min(rounds or 2, 2),
            ns={"small": [10, 100, 1000], "big": [10, 100, 1000]},
            budget_s=45,
            import_reps=7,
            recovery_reps=4,
            replay_rounds=2,
            replay_ns={"default": [10, 1000], "kitaru021": [2, 10], "prefect": [10, 100]},
            wait_reps=4,
            slow_recovery_reps={"kitaru021": 1, "prefect": 2},
        )


def _spec(system: System, settings: Settings, r: int) -> dict[str, Any]:
    ns = {
        kind: [n for n in values if n <= system.max_n.get(kind, n)]
        for kind, values in settings.ns.items()
    }
    return {
        **system.spec,
        "payloads": ["small", "big"] if r < settings.big_rounds else ["small"],
        "ns": ns,
        "inner": system.inner,
        "budget_s": system.budget_s or settings.budget_s,
    }


def overhead(
    systems: list[System], settings: Settings, work: Workdir
) -> dict[str, list[dict[str, Any]]]:
    """Round r runs every system once, in an order rotated by one each round, so a slow
    minute on a shared machine hits every system rather than one of them."""
    samples: dict[str, list[dict[str, Any]]] = {s.key: [] for s in systems}
    for r in range(settings.rounds):
        order = systems[r % len(systems) :] + systems[: r % len(systems)]
        for system in order:
            if system.max_rounds is not None and r >= system.max_rounds:
                continue
            progress(f"overhead round {r + 1}/{settings.rounds}: {system.label}")
            data = work.fresh(system.key)
            try:
                done = call(
                    system.product,
                    "overhead",
                    _spec(system, settings, r),
                    product_env(system.product, data, system.env),
                    timeout=1800,
                )
                sample = done.result()
                sample["worker_wall_s"] = done.wall_s
                sample["round"] = r
                sample["load"] = _load()
            except WorkerError as exc:
                progress(f"  failed: {exc}")
                sample = {"round": r, "error": str(exc)}
            samples[system.key].append(sample)
            work.drop(data)
    return samples


def _load() -> float:
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return -1.0


def imports(
    products: list[str], settings: Settings, work: Workdir
) -> dict[str, list[dict[str, float]]]:
    """Fresh interpreter per sample (bytecode already compiled by a discarded warm-up):
    time of the import statement inside the process, and the process from spawn to exit."""
    out: dict[str, list[dict[str, float]]] = {p: [] for p in ["python", *products]}
    data = work.fresh("imports")
    for product in out:
        try:
            _import_once(product, data)  # warm-up: compiles bytecode, fills the page cache
        except WorkerError as exc:
            progress(f"  {product} import failed: {exc}")
    for r in range(settings.import_reps):
        progress(f"import round {r + 1}/{settings.import_reps}")
        for product, samples in out.items():
            try:
                samples.append(_import_once(product, data))
            except WorkerError as exc:
                progress(f"  {product} import failed: {exc}")
    work.drop(data)
    return out


def _import_once(product: str, data: Path) -> dict[str, float]:
    real = "kitaru" if product == "python" else product
    python = _envs.python_for(real)
    code = (
        f"import time; t = time.perf_counter(); {IMPORTS[product]}; print(time.perf_counter() - t)"
    )
    env = product_env(real, data)
    done = run([python, "-c", code], env, timeout=120, cwd=data)
    if done.returncode != 0:
        raise WorkerError(done.tail())
    return {"import_s": float(done.stdout.strip().splitlines()[-1]), "wall_s": done.wall_s}


def _steps_ran(log: Path, phase: str) -> list[int]:
    try:
        words = log.read_text().split()
    except FileNotFoundError:
        return []
    return [int(words[k + 1]) for k in range(0, len(words), 2) if words[k] == phase]


def recovery(products: list[str], settings: Settings, work: Workdir) -> dict[str, Any]:
    """A 100-step run is killed with os._exit in step 90; a new process then recovers it.
    Timed from the recovering process's spawn to its exit (whole process) and inside it
    (after imports); the step log says which steps ran again."""
    modes = []
    for product in products:
        if product == "kitaru":
            modes += [("kitaru", "cli"), ("kitaru", "client")]
        else:
            modes.append((product, "process"))
    out: dict[str, Any] = {f"{p}:{m}": [] for p, m in modes}
    for r in range(settings.recovery_reps):
        for product, mode in modes:
            reps = settings.slow_recovery_reps.get(product, settings.recovery_reps)
            if r >= reps:
                continue
            progress(f"recovery {r + 1}/{reps}: {product} ({mode})")
            data = work.fresh(f"recovery-{product}")
            try:
                sample = _recover_once(product, mode, data)
            except WorkerError as exc:
                progress(f"  failed: {exc}")
                sample = {"error": str(exc)}
            out[f"{product}:{mode}"].append(sample)
            work.drop(data)
            if "unsupported" in sample:
                break
    return out


def _recover_once(product: str, mode: str, data: Path) -> dict[str, Any]:
    log = data / "steps.log"
    exec_id = f"recovery-{time.time_ns()}"
    spec = {"exec_id": exec_id}

    def env(phase: str) -> dict[str, str]:
        return product_env(product, data, {"BENCH_STEPLOG": str(log), "BENCH_PHASE": phase})

    call(product, "crash", spec, env("crash"), timeout=1800, expect_rc=1)
    crashed_at = max(_steps_ran(log, "crash"), default=0)
    if crashed_at != CRASH_AT:
        raise WorkerError(f"the crash run stopped at step {crashed_at}, not {CRASH_AT}")
    sample: dict[str, Any] = {}
    if mode == "cli":
        exec_id = call(product, "exec_id", {}, env("none")).result()["exec_id"]
        done = kitaru_cli(["executions", "resume", exec_id, "--json"], env("resume"))
        if done.returncode != 0:
            raise WorkerError(f"kitaru executions resume: exit {done.returncode}\n{done.tail()}")
        status = json.loads(done.stdout)["status"]
        if status != "completed":
            raise WorkerError(f"resumed execution is {status}")
        sample["wall_s"] = done.wall_s
    else:
        done = call(product, "resume", spec, env("resume"), timeout=1800)
        sample.update(done.result())
        sample["wall_s"] = done.wall_s
    reran = _steps_ran(log, "resume")
    sample["steps_rerun"] = len(reran)
    sample["first_rerun"] = min(reran) if reran else None
    return sample


def replay(products: list[str], settings: Settings, work: Workdir) -> dict[str, list[Any]]:
    """Replay from the last step of an N-step run, for a small and a large N: the slope
    between them is the cost of one reused step, free of fixed per-replay costs."""
    out: dict[str, list[Any]] = {p: [] for p in products}
    for r in range(settings.replay_rounds):
        for product in products:
            ns = settings.replay_ns.get(product, settings.replay_ns["default"])
            progress(f"replay round {r + 1}/{settings.replay_rounds}: {product} N={ns}")
            data = work.fresh(f"replay-{product}")
            try:
                # A first, untimed replay of a tiny run warms the code paths up; Kitaru
                # 0.21 is too slow for that to be worth it.
                warmup = [] if product == "kitaru021" else [3]
                done = call(
                    product,
                    "replay",
                    {
                        "ns": ns,
                        "warmup": warmup,
                        "inner": 1 if product in ("kitaru021", "prefect") else 3,
                    },
                    product_env(product, data),
                    timeout=1800,
                )
                res = done.result()
                for n in warmup:
                    res["totals_s"].pop(str(n), None)
                out[product].append(res)
            except WorkerError as exc:
                progress(f"  failed: {exc}")
                out[product].append({"error": str(exc)})
            work.drop(data)
    return out


def wait(products: list[str], settings: Settings, work: Workdir) -> dict[str, list[Any]]:
    """From sending the input to the flow's code after the wait running again."""
    modes = []
    for product in products:
        if product == "kitaru":
            modes += [("kitaru", "cli"), ("kitaru", "client")]
        elif product in ("dbos", "langgraph"):
            modes.append((product, "process"))
    out: dict[str, list[Any]] = {f"{p}:{m}": [] for p, m in modes}
    for r in range(settings.wait_reps):
        for product, mode in modes:
            progress(f"wait {r + 1}/{settings.wait_reps}: {product} ({mode})")
            data = work.fresh(f"wait-{product}")
            try:
                out[f"{product}:{mode}"].append(_wait_once(product, mode, data))
            except WorkerError as exc:
                progress(f"  failed: {exc}")
                out[f"{product}:{mode}"].append({"error": str(exc)})
            work.drop(data)
    return out


def _marker(path: Path) -> float:
    try:
        return float(path.read_text().split()[0])
    except (FileNotFoundError, IndexError) as exc:
        raise WorkerError(f"the flow never ran again after the wait ({exc})") from None


def _wait_once(product: str, mode: str, data: Path) -> dict[str, Any]:
    marker = data / "marker"
    env = product_env(product, data, {"BENCH_MARKER": str(marker)})
    spec = {"exec_id": f"wait-{time.time_ns()}"}
    if product == "dbos":
        return _wait_dbos(spec, env, marker)
    exec_id = call(product, "wait_start", spec, env).result().get("exec_id", spec["exec_id"])
    if marker.exists():
        raise WorkerError("the flow went past the wait before any input was given")
    sent = time.time()
    if mode == "cli":
        done = kitaru_cli(["executions", "input", exec_id, "approve", "true", "--json"], env)
        if done.returncode != 0:
            raise WorkerError(f"kitaru executions input: exit {done.returncode}\n{done.tail()}")
        return {"whole_process_s": _marker(marker) - sent, "command_wall_s": done.wall_s}
    res = call(product, "wait_answer", {"exec_id": exec_id}, env).result()
    ran = _marker(marker)
    return {"whole_process_s": ran - sent, "in_process_s": ran - res["t0"]}


def _wait_dbos(spec: dict[str, Any], env: dict[str, str], marker: Path) -> dict[str, Any]:
    """DBOS delivers messages to a workflow that a live process runs: keep it running,
    send from a separate client process."""
    import subprocess

    from benchmarks._run import _kill_group, worker_argv

    proc = subprocess.Popen(
        worker_argv("dbos", "wait_start", spec),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "WAITING":
            raise WorkerError(f"the DBOS workflow did not reach its recv(): {line!r}")
        sent = time.time()
        res = call("dbos", "wait_answer", spec, env).result()
        proc.wait(timeout=120)
    finally:
        _kill_group(proc)
    ran = _marker(marker)
    return {"whole_process_s": ran - sent, "in_process_s": ran - res["t0"]}
