"""What OpenTelemetry costs a checkpoint: the overhead workload of the Kitaru worker
(N steps with small outputs) in four set-ups, interleaved round by round.

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.otel [--quick]

- **today**: Kitaru before tracing existed (the parent of the commit that added
  `kitaru/_tracing.py`, or `BENCH_OTEL_BASE`), its `kitaru/` put first on the path;
- **not installed**: this tree, with opentelemetry made unimportable (a finder that
  refuses it) and an endpoint set, so the check goes as far as it can;
- **installed, not configured**: this tree, the SDK installed, no `OTEL_*` endpoint;
- **exporting**: this tree sending every span over OTLP/HTTP to a receiver on the
  loopback (a thread of this process that answers 200).

Ratios are per round (the set-ups of one round run back to back), then the median.
The target: not installed and not configured within 5% of today.
"""

from __future__ import annotations

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

from benchmarks._run import call, product_env, progress

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


def base_commit() -> str:
    import os

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
    ns = [100] if quick else [100, 1000]
    rounds = 2 if quick else 5
    spec = {"payloads": ["small"], "ns": {"small": ns}, "inner": {"small": 3}, "budget_s": 120}
    samples: dict[str, dict[str, list[float]]] = {s: {str(n): [] for n in ns} for s in SETUPS}
    with receiver() as endpoint:
        for r in range(rounds):
            order = SETUPS[r % len(SETUPS) :] + SETUPS[: r % len(SETUPS)]
            for setup in order:
                progress(f"otel round {r + 1}/{rounds}: {setup}")
                data = workdir / f"data-{r}-{SETUPS.index(setup)}"
                data.mkdir(parents=True, exist_ok=True)
                env = _env(setup, data, base, blocker, endpoint)
                cells = call("kitaru", "overhead", spec, env, timeout=1800).result()["cells"]
                for n in ns:
                    samples[setup][str(n)].append(cells["small"][str(n)]["per_step_us"])
    return summarize(samples, ns, rounds, resolved, quick)


def summarize(
    samples: dict[str, dict[str, list[float]]], ns: list[int], rounds: int, base: str, quick: bool
) -> dict[str, Any]:
    median = {
        s: {n: statistics.median(v) for n, v in cells.items()} for s, cells in samples.items()
    }
    ratios = {
        s: {
            n: statistics.median(
                a / b for a, b in zip(samples[s][n], samples["today"][n], strict=True)
            )
            for n in cells
        }
        for s, cells in samples.items()
    }
    big = str(ns[-1])
    head = " | ".join(f"N = {n}: µs/step" for n in ns)
    lines = [f"| set-up | {head} | ratio to today at N = {big} |", "|---|" + "---|" * (len(ns) + 1)]
    for s in SETUPS:
        cols = " | ".join(f"{median[s][str(n)]:.1f}" for n in ns)
        lines.append(f"| {s} | {cols} | {ratios[s][big]:.3f} |")
    within = all(ratios[s][big] <= TARGET for s in ("not installed", "installed, not configured"))
    lines += [
        "",
        f"Today is Kitaru at {base}. Not installed and not configured "
        f"{'are' if within else 'are NOT'} within {TARGET - 1:.0%} of today at N = {big}; "
        f"exporting every span costs {ratios['exporting'][big]:.2f}x today's per-checkpoint "
        f"overhead ({median['exporting'][big] - median['today'][big]:+.1f} µs per checkpoint).",
    ]
    return {
        "title": f"OpenTelemetry: per-checkpoint overhead, small outputs, median of {rounds} rounds",
        "markdown": "\n".join(lines),
        "data": {
            "base": base,
            "quick": quick,
            "per_step_us": median,
            "ratio_to_today": ratios,
            "samples_us": samples,
            "within_target": within,
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
