"""What OpenTelemetry costs a checkpoint: one flow of N checkpoint calls with small outputs
(the overhead workload's step) in four set-ups, interleaved round by round.

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.otel [--quick]

- **today**: Kitaru before tracing existed (the parent of the commit that added
  `kitaru/_tracing.py`, or `BENCH_OTEL_BASE`), its `kitaru/` put first on the path;
- **not installed**: this tree, with opentelemetry made unimportable (a finder that
  refuses it) and an endpoint set, so the check goes as far as it can;
- **installed, not configured**: this tree, the SDK installed, no `OTEL_*` endpoint;
- **exporting**: this tree sending every span over OTLP/HTTP to a receiver on the
  loopback (a thread of this process that answers 200).

Each set-up runs in a fresh process on a fresh KITARU_HOME: two warm-up runs, then
`runs` timed runs; a sample is the median run minus the same loop without Kitaru, per
step. Both wall time and the process's CPU time (all its threads: the exporter's
thread included) are taken; CPU time is far less moved by other work on a shared
machine, so the target is judged on it. Ratios are per round (the set-ups of one round
run back to back), then the median. The target: not installed and not configured
within 5% of today.

Where valgrind is installed, a full run also counts the instructions per checkpoint of
each set-up but exporting (`instructions`): a count that another process on the machine
does not move, so it says whether the target is met even when the machine is busy.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks._run import WorkerError, product_env, progress, run

REPO = Path(__file__).resolve().parent.parent
SETUPS = ("today", "not installed", "installed, not configured", "exporting")
TARGET = 1.05

BLOCKER = """
import importlib.abc, sys

class _NoOpenTelemetry(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoOpenTelemetry())
"""


# The overhead workload's flow: N steps with small outputs.
FLOW = """
@kitaru.checkpoint
def step(i: int) -> dict:
    return {"i": i, "text": "x" * 100}

@kitaru.flow
def steps(n: int) -> int:
    for i in range(n):
        step(i)
    return n
"""

WORKER = (
    """
import json, statistics, sys, time
import kitaru
"""
    + FLOW
    + """
def plain(n):
    return [{"i": i, "text": "x" * 100} for i in range(n)]

def timed(fn, n):
    w, c = time.perf_counter(), time.process_time()
    fn(n)
    return time.perf_counter() - w, time.process_time() - c

n, runs = int(sys.argv[1]), int(sys.argv[2])
steps.run(2); steps.run(2)
base = [timed(plain, n) for _ in range(5)]
took = [timed(lambda k: steps.run(k).result(), n) for _ in range(runs)]
per_step = {
    clock: (statistics.median(t[i] for t in took) - statistics.median(b[i] for b in base))
    / n * 1e6
    for i, clock in enumerate(("wall", "cpu"))
}
print("RESULT " + json.dumps(per_step))
"""
)


# The same flow for counting instructions: `runs` runs of 500 steps after a warm-up;
# per step = (count with runs=4 - count with runs=0) / 2000. Under valgrind a process
# runs ~50x slower, so the live feed's writer, which wakes on wall time, would write
# ~50x more often than it does at full speed: its period is stretched to match.
IR_WORKER = (
    """
import sys
import kitaru
try:
    import kitaru._events as feed
    feed.FLUSH_SECONDS = 5.0
except ImportError:
    pass
"""
    + FLOW
    + """
steps.run(2); steps.run(10)
for _ in range(int(sys.argv[1])):
    steps.run(500).result()
"""
)
IR_SETUPS = ("today", "not installed", "installed, not configured")


def instructions(
    workdir: Path, base: Path, blocker: Path, endpoint: str
) -> dict[str, float] | None:
    """Instructions per checkpoint in each set-up but exporting, counted by valgrind
    (cachegrind, no cache simulation): the same on a busy machine as on a quiet one.
    None when valgrind is not installed."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    worker = workdir / "ir_worker.py"
    worker.write_text(IR_WORKER)
    counts: dict[str, float] = {}
    for setup in IR_SETUPS:
        totals = []
        for runs in (0, 4):
            progress(f"otel instructions: {setup}, {runs} runs")
            data = workdir / f"ir-{IR_SETUPS.index(setup)}-{runs}"
            data.mkdir(parents=True, exist_ok=True)
            env = {**_env(setup, data, base, blocker, endpoint), "PYTHONHASHSEED": "0"}
            done = run(
                [valgrind, "--tool=cachegrind", "--cache-sim=no",
                 "--cachegrind-out-file=/dev/null", sys.executable, str(worker), str(runs)],
                env, timeout=1800,
            )  # fmt: skip
            found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
            if done.returncode != 0 or found is None:
                raise WorkerError(
                    f"otel instructions {setup}: exit {done.returncode}:\n{done.tail()}"
                )
            totals.append(int(found.group(1).replace(",", "")))
        counts[setup] = (totals[1] - totals[0]) / 2000
    return counts


def base_commit() -> str:
    if os.environ.get("BENCH_OTEL_BASE"):
        return os.environ["BENCH_OTEL_BASE"]
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "kitaru/_tracing.py"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    if not added:
        raise RuntimeError("kitaru/_tracing.py is not committed yet; set BENCH_OTEL_BASE")
    return f"{added[-1]}^"


def export_tree(commit: str, into: Path) -> Path:
    """`kitaru/` as it was at `commit`, under `into`."""
    into.mkdir(parents=True, exist_ok=True)
    archive = into / "kitaru.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "archive", commit, "kitaru"], cwd=REPO, stdout=out, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    archive.unlink()
    return into


@contextmanager
def receiver() -> Iterator[str]:
    """An OTLP/HTTP endpoint that takes every export and answers 200, on the loopback."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _env(setup: str, data: Path, base: Path, blocker: Path, endpoint: str) -> dict[str, str]:
    env = product_env("kitaru", data)
    for name in [k for k in env if k.startswith("OTEL_") or k == "TRACEPARENT"]:
        del env[name]
    if setup == "today":
        env["PYTHONPATH"] = str(base)
    elif setup == "not installed":
        env["PYTHONPATH"] = str(blocker)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
    elif setup == "exporting":
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint
        env["OTEL_SERVICE_NAME"] = "kitaru-bench"
    return env


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    commit = base_commit()
    resolved = subprocess.run(
        ["git", "rev-parse", "--short", commit],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    base = export_tree(commit, workdir / "today")
    blocker = workdir / "blocker"
    blocker.mkdir(parents=True, exist_ok=True)
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    worker = workdir / "worker.py"
    worker.write_text(WORKER)
    n, runs = (100, 3) if quick else (1000, 5)
    rounds = 2 if quick else 7
    samples: dict[str, dict[str, list[float]]] = {s: {"wall": [], "cpu": []} for s in SETUPS}
    with receiver() as endpoint:
        for r in range(rounds):
            order = SETUPS[r % len(SETUPS) :] + SETUPS[: r % len(SETUPS)]
            for setup in order:
                progress(f"otel round {r + 1}/{rounds}: {setup}")
                data = workdir / f"data-{r}-{SETUPS.index(setup)}"
                data.mkdir(parents=True, exist_ok=True)
                env = _env(setup, data, base, blocker, endpoint)
                done = run([sys.executable, str(worker), str(n), str(runs)], env, timeout=1800)
                if done.returncode != 0:
                    raise WorkerError(f"otel {setup}: exit {done.returncode}:\n{done.tail()}")
                for clock, us in done.result().items():
                    samples[setup][clock].append(us)
        counted = None if quick else instructions(workdir, base, blocker, endpoint)
    return summarize(samples, n, rounds, resolved, quick, counted)


def summarize(
    samples: dict[str, dict[str, list[float]]],
    n: int,
    rounds: int,
    base: str,
    quick: bool,
    counted: dict[str, float] | None = None,
) -> dict[str, Any]:
    median = {
        s: {c: statistics.median(v) for c, v in clocks.items()} for s, clocks in samples.items()
    }
    ratios = {
        s: {
            c: statistics.median(
                a / b for a, b in zip(samples[s][c], samples["today"][c], strict=True)
            )
            for c in clocks
        }
        for s, clocks in samples.items()
    }
    lines = [
        "| set-up | CPU µs per checkpoint | ratio to today (CPU) | wall µs per checkpoint | ratio to today (wall) |",
        "|---|---|---|---|---|",
    ]
    for s in SETUPS:
        lines.append(
            f"| {s} | {median[s]['cpu']:.1f} | {ratios[s]['cpu']:.3f} "
            f"| {median[s]['wall']:.1f} | {ratios[s]['wall']:.3f} |"
        )
    judged = ("not installed", "installed, not configured")
    within = all(ratios[s]["cpu"] <= TARGET for s in judged)
    extra = median["exporting"]["cpu"] - median["today"]["cpu"]
    lines += [
        "",
        f"N = {n} steps, small outputs; today is Kitaru at {base}. Not installed and not "
        f"configured {'are' if within else 'are NOT'} within {TARGET - 1:.0%} of today "
        f"(CPU time); exporting every span costs {ratios['exporting']['cpu']:.2f}x today's "
        f"per-checkpoint CPU time ({extra:+.1f} µs per checkpoint). Load average at the "
        f"end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.",
    ]
    counted_within = None
    if counted:
        counted_within = all(counted[s] <= TARGET * counted["today"] for s in judged)
        lines += [
            "",
            "Instructions per checkpoint (valgrind; the same however busy the machine is):",
            "",
            "| set-up | instructions per checkpoint | ratio to today |",
            "|---|---|---|",
            *(
                f"| {s} | {counted[s]:,.0f} | {counted[s] / counted['today']:.3f} |"
                for s in IR_SETUPS
            ),
            "",
            f"By instructions, not installed and not configured "
            f"{'are' if counted_within else 'are NOT'} within {TARGET - 1:.0%} of today.",
        ]
    return {
        "title": f"OpenTelemetry: per-checkpoint overhead, N = {n}, median of {rounds} rounds",
        "markdown": "\n".join(lines),
        "data": {
            "base": base,
            "n": n,
            "quick": quick,
            "per_step_us": median,
            "ratio_to_today": ratios,
            "samples_us": samples,
            "within_target": within,
            "instructions_per_step": counted,
            "instructions_within_target": counted_within,
            "load_average": os.getloadavg()[0],
        },
    }


if __name__ == "__main__":
    import json
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kitaru-bench-otel-") as tmp:
        out = bench("--quick" in sys.argv, Path(tmp))
    print(out["markdown"])
    if "--quick" not in sys.argv:
        (REPO / "benchmarks" / "results" / "otel.json").write_text(json.dumps(out, indent=2) + "\n")
