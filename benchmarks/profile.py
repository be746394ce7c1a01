"""Where Kitaru's time goes on its hot paths, to act on what the benchmark shows.

    .venv/bin/python -m benchmarks.profile checkpoints   # cProfile of N=1000 checkpoints
    .venv/bin/python -m benchmarks.profile import        # -X importtime of `import kitaru`
    .venv/bin/python -m benchmarks.profile resume        # CLI resume of a 100-step run killed at 90
    .venv/bin/python -m benchmarks.profile journal       # SQLite: floor vs Kitaru's writes vs flow.run

Each runs in a throwaway KITARU_HOME and prints its top entries.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "workers" / "w_kitaru.py"

_CHECKPOINTS = """
import cProfile, pstats, statistics, sys, time
sys.path.insert(0, {workers!r})
from w_kitaru import steps
steps.run("small", 10)
for _ in range(3):
    steps.run("small", 1000)
times = []
for _ in range(5):
    t = time.perf_counter(); steps.run("small", 1000); times.append(time.perf_counter() - t)
print(f"N=1000 without profiler: median {{statistics.median(times) * 1e3:.0f}} ms, "
      f"min {{min(times) * 1e3:.0f}} ms")
prof = cProfile.Profile()
prof.enable()
steps.run("small", 1000)
prof.disable()
pstats.Stats(prof).sort_stats("tottime").print_stats({top})
"""

_JOURNAL = """
import json, sqlite3, statistics, time, os
from kitaru import checkpoint, flow
from kitaru.journal import current_journal

@checkpoint
def step(i: int) -> dict[str, object]:
    return {{"i": i, "text": "x" * 100}}

@flow
def steps(n: int) -> int:
    for i in range(n):
        step(i)
    return n

steps.run(5)
journal = current_journal()
conn = journal._conn
exec_id, owner = conn.execute("SELECT exec_id, owner FROM executions").fetchone()
floor = sqlite3.connect(os.path.join(os.environ["KITARU_HOME"], "floor.db"), isolation_level=None)
floor.execute("PRAGMA journal_mode=WAL")
floor.execute("PRAGMA synchronous=NORMAL")
floor.execute("CREATE TABLE steps (run TEXT, step INTEGER, output BLOB, PRIMARY KEY (run, step))")

def floor_run(n, tag):
    for i in range(n):
        floor.execute("BEGIN")
        floor.execute("INSERT INTO steps VALUES (?, ?, ?)", (tag, i, json.dumps({{"i": i, "text": "x" * 100}}).encode()))
        floor.execute("COMMIT")

def kitaru_rows(n, tag):
    # The two rows a checkpoint commit writes, with the same statements' shape.
    for i in range(n):
        aid = f"ka_{{tag}}_{{i:06d}}"
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO artifacts (artifact_id, exec_id, name, version, producer, producer_key, "
            "type_ref, serializer, content_hash, size, uri, created_at, metadata, inline) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (aid, exec_id, f"s{{tag}}{{i}}", 1, "checkpoint", "k", "builtins:dict", "json",
             "h" * 32, 120, None, time.time(), None, json.dumps({{"i": i, "text": "x" * 100}}).encode()),
        )
        conn.execute(
            "INSERT INTO calls (exec_id, key, seq, name, func, status, started_at, ended_at, run, "
            "kind, attempts, output_artifact, error, traceback, reused_from, metadata) "
            "SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,? "
            "WHERE EXISTS (SELECT 1 FROM executions WHERE exec_id = ? AND owner = ?)",
            (exec_id, f"s{{tag}}{{i}}", i, "step", "m:step", "completed", time.time(), time.time(),
             1, "checkpoint", 1, aid, None, None, None, None, exec_id, owner),
        )
        conn.execute("COMMIT")

def flow_run(n, tag):
    steps.run(n)

for label, fn in [("floor: one row", floor_run), ("Kitaru's two rows, raw SQL", kitaru_rows),
                  ("flow.run", flow_run)] * 2:
    times = []
    for r in range(5):
        t = time.perf_counter(); fn(1000, f"{{label[:3]}}{{r}}{{time.time_ns()}}")
        times.append(time.perf_counter() - t)
    print(f"{{label:28s}} median {{statistics.median(times) * 1e3:6.1f}} us/step   "
          f"min {{min(times) * 1e3:6.1f}}")
"""


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(KITARU_HOME=home, BENCH_DATA=home)
    return env


def checkpoints(top: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        code = _CHECKPOINTS.format(workers=str(WORKER.parent), top=top)
        subprocess.run([sys.executable, "-c", code], env=_env(home), check=True)


def journal() -> None:
    with tempfile.TemporaryDirectory() as home:
        subprocess.run([sys.executable, "-c", _JOURNAL.format()], env=_env(home), check=True)


def imports(top: int, runs: int = 8) -> None:
    best: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as home:
        for _ in range(runs):
            err = subprocess.run(
                [sys.executable, "-X", "importtime", "-c", "import kitaru"],
                env=_env(home),
                capture_output=True,
                text=True,
                check=True,
            ).stderr
            for line in err.splitlines():
                m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|\s*(\S+)", line)
                if m:
                    name, cum = m.group(2), int(m.group(1))
                    best[name] = min(best.get(name, cum), cum)
    print(f"`import kitaru`, cumulative µs, the lowest of {runs} runs:")
    for name, cum in sorted(best.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {cum / 1000:7.1f} ms  {name}")


def resume(top: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = _env(home)
        env.update(BENCH_STEPLOG=os.path.join(home, "steps.log"), BENCH_PHASE="crash")
        subprocess.run([sys.executable, str(WORKER), "crash"], env=env, check=False)
        listed = subprocess.run(
            [sys.executable, "-m", "kitaru", "executions", "list", "--json", "--limit", "1"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        exec_id = json.loads(listed.stdout)[0]["exec_id"]
        env["BENCH_PHASE"] = "resume"
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "kitaru", "executions", "resume", exec_id, "--json"],
            env=env,
            capture_output=True,
            check=True,
        )
        print(f"whole process, `kitaru executions resume`: {time.perf_counter() - t0:.3f} s")
        # Crash a second one and profile the CLI inside one process, imports apart.
        env["BENCH_PHASE"] = "crash"
        subprocess.run([sys.executable, str(WORKER), "crash"], env=env, check=False)
        listed = subprocess.run(
            [sys.executable, "-m", "kitaru", "executions", "list", "--json", "--limit", "1"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        exec_id = json.loads(listed.stdout)[0]["exec_id"]
        env["BENCH_PHASE"] = "resume"
        code = f"""
import contextlib, cProfile, io, pstats, time
t0 = time.perf_counter()
from kitaru.cli import main
t1 = time.perf_counter()
prof = cProfile.Profile()
with contextlib.redirect_stdout(io.StringIO()):
    prof.enable()
    rc = main(["executions", "resume", {exec_id!r}, "--json"])
    prof.disable()
t2 = time.perf_counter()
print(f"exit {{rc}}; import kitaru.cli {{(t1 - t0) * 1e3:.0f}} ms; main() {{(t2 - t1) * 1e3:.0f}} ms (profiled)")
pstats.Stats(prof).sort_stats("cumulative").print_stats({top})
"""
        subprocess.run([sys.executable, "-c", code], env=env, check=True)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    p.add_argument("what", choices=["checkpoints", "import", "resume", "journal"])
    p.add_argument("--top", type=int, default=25, help="entries to print")
    args = p.parse_args()
    if args.what == "checkpoints":
        checkpoints(args.top)
    elif args.what == "import":
        imports(args.top)
    elif args.what == "journal":
        journal()
    else:
        resume(args.top)


if __name__ == "__main__":
    main()
