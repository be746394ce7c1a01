"""What every worker shares. Standard library only: workers run inside each system's own
virtual environment, where nothing of ours is installed.

A worker is `python <system>.py <task> '<json args>'`; it prints progress to stderr and
one `RESULT {...}` line to stdout, which the harness parses.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import string
import sys
import time
from collections.abc import Callable
from typing import Any

SMALL_TEXT = "x" * 100
_BIG: str | None = None
BIG_SIZE = 1_000_000


def big_text() -> str:
    """One megabyte of letters that do not compress, built once per process, so the
    payload costs nothing to produce and no system gets an advantage from compression."""
    global _BIG
    if _BIG is None:
        rng = random.Random(1234)
        _BIG = "".join(rng.choices(string.ascii_letters + string.digits, k=BIG_SIZE))
    return _BIG


def payload(kind: str, i: int) -> dict[str, Any]:
    """A step's output: a dict with a 100-character string, or with a 1 MB string."""
    return {"i": i, "text": SMALL_TEXT if kind == "small" else big_text()}


def plain_loop(kind: str, n: int) -> list[dict[str, Any]]:
    return [payload(kind, i) for i in range(n)]


def args() -> tuple[str, dict[str, Any]]:
    task = sys.argv[1]
    raw = sys.argv[2] if len(sys.argv) > 2 else "{}"
    return task, json.loads(raw)


def result(data: dict[str, Any]) -> None:
    sys.stdout.write("RESULT " + json.dumps(data) + "\n")
    sys.stdout.flush()


def say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- memory ---------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_rss_mb() -> float:
    """Peak resident memory of this process plus every live descendant (a peer's
    helper server process counts: the user pays for it too)."""
    total, todo, seen = 0, [os.getpid()], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _hwm_kb(pid)
        todo.extend(_children(pid))
    return round(total / 1024, 1)


# -- bytes on disk --------------------------------------------------------------------------


def _is_sqlite(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def stored_bytes(root: str) -> int:
    """Bytes a directory holds as data: SQLite files by their used pages (WAL content
    included, free pages and stale WAL frames not), every other file by its size.
    Counting pages instead of file sizes keeps a WAL file that was not checkpointed
    yet, or a freelist, from being mistaken for stored data."""
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if name.endswith(("-wal", "-shm", "-journal")):
                continue
            if _is_sqlite(path):
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
                try:
                    page = conn.execute("PRAGMA page_size").fetchone()[0]
                    count = conn.execute("PRAGMA page_count").fetchone()[0]
                    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
                    total += (count - free) * page
                finally:
                    conn.close()
            else:
                try:
                    total += os.path.getsize(path)
                except OSError:
                    pass
    return total


# -- the overhead workload ------------------------------------------------------------------


def overhead(
    run_one: Callable[[str, int, str], object],
    spec: dict[str, Any],
    data_dir: str,
    flush: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Time `run_one(kind, n, run_id)` for every payload kind and N in `spec`.

    Two warm-up runs come first. Each cell is run `inner` times; the cell's sample is
    the median of those. A cell whose predicted time (per-step cost of the previous N
    times this N) exceeds `budget_s` is skipped and says so, so a slow system cannot
    hold the whole benchmark hostage.
    """
    budget = float(spec.get("budget_s", 60))
    out: dict[str, Any] = {"cells": {}, "bytes_per_checkpoint": {}, "peak_rss_mb": {}}
    for kind in spec["payloads"]:
        inner = int(spec["inner"][kind])
        run_one(kind, 2, f"warmup-{kind}-1")
        run_one(kind, 2, f"warmup-{kind}-2")
        cells: dict[str, Any] = {}
        per_step_prev: float | None = None
        ns = sorted(int(n) for n in spec["ns"][kind])
        for n in ns:
            if per_step_prev is not None and per_step_prev * n * inner > budget:
                cells[str(n)] = {
                    "skipped": f"predicted {per_step_prev * n:.0f} s per run at "
                    f"{per_step_prev * 1e3:.0f} ms/step; over the {budget:.0f} s budget"
                }
                continue
            plain = statistics.median(timed(lambda: plain_loop(kind, n)) for _ in range(3))
            measure_bytes = n == ns[-1]
            if measure_bytes:
                flush()
                before = stored_bytes(data_dir)
            totals = []
            for r in range(inner):
                rid = f"{kind}-{n}-{r}-{time.time_ns()}"
                totals.append(timed(lambda rid=rid: run_one(kind, n, rid)))
            if measure_bytes:
                flush()
                out["bytes_per_checkpoint"][kind] = round(
                    (stored_bytes(data_dir) - before) / (n * inner)
                )
            total = statistics.median(totals)
            cells[str(n)] = {
                "total_s": total,
                "plain_s": plain,
                "per_step_us": (total - plain) / n * 1e6,
                "all_s": totals,
            }
            per_step_prev = total / n
            say(f"  {kind} N={n}: {(total - plain) / n * 1e6:,.1f} us/step")
        out["cells"][kind] = cells
        out["peak_rss_mb"][kind] = peak_rss_mb()
    return out


def write_marker(path: str) -> None:
    """Record, once, the moment the flow ran again after a wait."""
    with open(path, "a") as f:
        f.write(f"{time.time():.6f}\n")


class StepLog:
    """Appends `<phase> <step>` for every step body that runs, so the harness can count
    what a recovery re-ran."""

    def __init__(self, path: str, phase: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.phase = phase

    def ran(self, i: int) -> None:
        os.write(self.fd, f"{self.phase} {i}\n".encode())


def steps_ran(path: str, phase: str) -> list[int]:
    try:
        with open(path) as f:
            words = f.read().split()
    except FileNotFoundError:
        return []
    return [int(words[k + 1]) for k in range(0, len(words), 2) if words[k] == phase]
