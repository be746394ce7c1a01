"""Kitaru's side of benchmarks/speed.py: timings that need one process of their own.

w_speed.py empty  '{"runs": 1000}'                  # flow.run of an empty flow
w_speed.py server '{"commits": 2000, "clients": 8}' # commit_call via kitaru server
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
REPO = Path(__file__).resolve().parents[2]

import _common  # noqa: E402

from kitaru import flow  # noqa: E402


@flow
def echo(x: int) -> int:
    return x


def empty(spec: dict[str, Any]) -> dict[str, Any]:
    from kitaru.journal import current_journal

    for _ in range(20):
        echo.run(1)
    times = []
    for _ in range(int(spec["runs"])):
        t0 = time.perf_counter()
        echo.run(1)
        times.append(time.perf_counter() - t0)
    # The commits one run makes, from the journal's own statements.
    conn = current_journal()._conn  # type: ignore[attr-defined]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    echo.run(1)
    conn.set_trace_callback(None)
    commits = sum(1 for s in statements if s.strip().upper() == "COMMIT")
    commit_us = _commit_floor(Path(os.environ["BENCH_DATA"]) / "floor.db")
    median_us = statistics.median(times) * 1e6
    return {
        "median_us": median_us,
        "min_us": min(times) * 1e6,
        "commits": commits,
        "statements": len(statements),
        "commit_us": commit_us,
        "floor_us": commits * commit_us,
        "ratio": median_us / (commits * commit_us),
    }


def _commit_floor(path: Path, n: int = 2000) -> float:
    """One small INSERT + COMMIT, WAL, synchronous=NORMAL: the median, µs."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v BLOB)")
    row = b'{"i": 0, "text": "' + b"x" * 100 + b'"}'
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (v) VALUES (?)", (row,))
        db.execute("COMMIT")
        times.append(time.perf_counter() - t0)
    db.close()
    return statistics.median(times[n // 10 :]) * 1e6


def server(spec: dict[str, Any]) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from benchmarks import server_api
    from kitaru.journal import open_journal
    from kitaru.remote import HttpJournal
    from kitaru.server import _tokens
    from tests.server_process import ServerProcess

    server_api.COMMITS = int(spec["commits"])
    server_api.CONCURRENCY = int(spec["clients"])
    tmp = Path(tempfile.mkdtemp(prefix="speed-", dir=os.environ["BENCH_DATA"]))
    url = f"sqlite:///{tmp / 'bench.db'}"
    direct = open_journal(url)
    token, _ = _tokens.create(direct, scope="write", name="bench")
    owner = "bench:1:0:0"
    proc = ServerProcess(
        url, tmp / "server", args=("--sweep-interval", "0", "--log-level", "warning")
    )
    try:
        os.environ["KITARU_API_TOKEN"] = token
        through = server_api.commit_bench(lambda: HttpJournal(proc.url), owner)
        alone = server_api.commit_bench(lambda: direct, owner)
    finally:
        proc.stop()
    key = f"{server_api.CONCURRENCY}_flows"
    return {
        "server_per_s": through[key]["per_second"],
        "direct_per_s": alone[key]["per_second"],
        "ratio": through[key]["per_second"] / alone[key]["per_second"],
        "server_one_flow_per_s": through["one_flow"]["per_second"],
        "direct_one_flow_per_s": alone["one_flow"]["per_second"],
        "server_p50_ms": through[key]["p50_ms"],
    }


def main() -> None:
    task, spec = _common.args()
    tasks = {"empty": empty, "server": server}
    if task not in tasks:
        raise SystemExit(f"unknown task {task!r}")
    _common.result(tasks[task](spec))


if __name__ == "__main__":
    main()
