"""Replay many: the time to replay a cohort of past executions from the middle and build
the matrix of what changed (`kitaru executions replay --flow F --from KEY`).

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.cohort [--quick]

N executions of a flow of ten small checkpoints are recorded in a fresh SQLite home,
then all of them are replayed from the sixth checkpoint in one process (the five above
it are reused, five run again) and compared with their sources. The report gives the
time per replayed execution, matrix included, and the time a plain run of the same flow
takes in the same process (the reference: a replay reads five outputs back instead of
computing them, and writes a comparison). The work runs in a child process with its
own KITARU_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._run import progress
from kitaru import checkpoint, flow

FROM = "s5"


@checkpoint
def s0(x: int) -> int:
    return x + 1


@checkpoint
def s1(x: int) -> int:
    return x + 1


@checkpoint
def s2(x: int) -> int:
    return x + 1


@checkpoint
def s3(x: int) -> int:
    return x + 1


@checkpoint
def s4(x: int) -> int:
    return x + 1


@checkpoint
def s5(x: int) -> int:
    return x + 1


@checkpoint
def s6(x: int) -> int:
    return x + 1


@checkpoint
def s7(x: int) -> int:
    return x + 1


@checkpoint
def s8(x: int) -> int:
    return x + 1


@checkpoint
def s9(x: int) -> int:
    return x + 1


@flow
def ten_steps(x: int) -> int:
    for step in (s0, s1, s2, s3, s4, s5, s6, s7, s8, s9):
        x = step(x)
    return x


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    n = 50 if quick else 500
    home = workdir / "home"
    if home.exists():
        import shutil

        shutil.rmtree(home)
    progress(f"  cohort: {n} executions of 10 checkpoints, replayed from {FROM}")
    env = {**os.environ, "KITARU_HOME": str(home), "KITARU_QUIET": "1"}
    for var in ("KITARU_JOURNAL_URL", "KITARU_ARTIFACT_STORE", "KITARU_SERVER_URL"):
        env.pop(var, None)
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cohort", "--child", str(n)],
        cwd=root, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    markdown = "\n".join(
        [
            "| executions | ms per replayed execution (matrix included) | ms per plain run | "
            "all same |",
            "|---|---|---|---|",
            f"| {n} | {data['replay_ms']:.2f} | {data['run_ms']:.2f} | {data['same']} |",
            "",
            f"A flow of 10 checkpoints replayed from {FROM} (5 outputs reused, 5 run), SQLite, "
            "one process; `same` counts replays whose every output matched their source.",
        ]
    )
    return {"title": "cohort: replay many", "markdown": markdown, "data": data}


def _child(n: int) -> None:
    from kitaru import _cohort
    from kitaru.client import KitaruClient

    started = time.perf_counter()
    for i in range(n):
        ten_steps.run(i)
    run_s = time.perf_counter() - started
    client = KitaruClient()
    sources = _cohort.select(client.journal, "ten_steps", limit=n)
    assert len(sources) == n, len(sources)
    started = time.perf_counter()
    rows = _cohort.replay_all(client, sources, from_=FROM, overrides={}, concurrency=1)
    data = _cohort.matrix(rows)
    replay_s = time.perf_counter() - started
    out = {
        "executions": n,
        "run_ms": run_s / n * 1e3,
        "replay_ms": replay_s / n * 1e3,
        "same": data["summary"]["same"],
    }
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay many: time per replayed execution.")
    parser.add_argument("--quick", action="store_true", help="50 executions instead of 500")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    work = Path(__file__).resolve().parent / ".work" / "cohort"
    work.mkdir(parents=True, exist_ok=True)
    print(bench(args.quick, work)["markdown"])


if __name__ == "__main__":
    main()
