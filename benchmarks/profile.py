"""Where Kitaru's time goes on its hot paths, to act on what the benchmark shows.

    .venv/bin/python -m benchmarks.profile checkpoints   # cProfile of N=1000 checkpoints
    .venv/bin/python -m benchmarks.profile import        # -X importtime of `import kitaru`
    .venv/bin/python -m benchmarks.profile resume        # CLI resume of a 100-step run killed at 90
    .venv/bin/python -m benchmarks.profile journal       # floor vs the journal's commit vs flow.run
    .venv/bin/python -m benchmarks.profile empty         # flow.run of an empty flow: SQL, cProfile

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

_JOURNAL_SPLIT = """
import json, os, sqlite3, statistics, sys, time
from kitaru import checkpoint, flow
from kitaru.journal import ArtifactRecord, CallRecord, current_journal

OUT = json.dumps({{"i": 0, "text": "x" * 100}}).encode()


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
conn.execute("UPDATE executions SET owner = 'bench', status = 'running' WHERE exec_id = ?", (exec_id,))
floor = sqlite3.connect(os.path.join(os.environ["KITARU_HOME"], "floor.db"), isolation_level=None)
floor.execute("PRAGMA journal_mode=WAL")
floor.execute(f"PRAGMA synchronous={{sys.argv[1]}}")
floor.execute("CREATE TABLE steps (run TEXT, step INTEGER, output BLOB, PRIMARY KEY (run, step))")
seq = [1000]


def floor_run(n):
    for i in range(n):
        floor.execute("BEGIN")
        floor.execute("INSERT INTO steps VALUES (?, ?, ?)", (str(seq[0]), i, OUT))
        floor.execute("COMMIT")
    seq[0] += 1


def commit_run(n):
    # The journal's own commit of a checkpoint call, with records built up front.
    for i in range(n):
        seq[0] += 1
        now = time.time()
        out = ArtifactRecord(f"a{{seq[0]}}", exec_id, "s", 1, "checkpoint", "s",
                             "builtins:dict", "json", "h" * 64, len(OUT), None, now, OUT)
        call = CallRecord(exec_id, f"s#{{seq[0]}}", seq[0], "step", "m:step", "completed",
                          now, now, 1, output_artifact=out.artifact_id)
        assert journal.commit_call(call, out, [], owner="bench")


def flow_run(n):
    steps.run(n)


def pages(fn):
    c = journal._conn
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    auto = c.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    c.execute("PRAGMA wal_autocheckpoint=0")
    fn(100)
    frames = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] / 100
    c.execute(f"PRAGMA wal_autocheckpoint={{auto}}")
    return frames


print(f"1000 steps, small output, WAL synchronous={{sys.argv[1]}}, µs per step (journal WAL pages per commit):")
for label, fn in [("floor: one INSERT+COMMIT", floor_run), ("journal.commit_call only", commit_run),
                  ("flow.run, whole path", flow_run)]:
    fn(200)
    times = []
    for _ in range(5):
        t = time.perf_counter(); fn(1000); times.append(time.perf_counter() - t)
    extra = "" if fn is floor_run else f"  ({{pages(fn):.1f}} pages)"
    print(f"  {{label:26s}} median {{statistics.median(times) * 1e3:6.1f}}  min {{min(times) * 1e3:6.1f}}{{extra}}")
"""


_EMPTY = """
import cProfile, pstats, statistics, time
from kitaru import flow
from kitaru.journal import current_journal


@flow
def echo(x: int) -> int:
    return x


for _ in range(50):
    echo.run(1)
times = []
for _ in range(500):
    t = time.perf_counter(); echo.run(1); times.append(time.perf_counter() - t)
print(f"flow.run of an empty flow: median {{statistics.median(times) * 1e6:.0f}} µs, "
      f"min {{min(times) * 1e6:.0f}} µs")
statements = []
current_journal()._conn.set_trace_callback(statements.append)
echo.run(1)
current_journal()._conn.set_trace_callback(None)
print(f"{{len(statements)}} statements:")
for s in statements:
    print("  " + " ".join(s.split())[:110])
prof = cProfile.Profile()
prof.enable()
for _ in range(300):
    echo.run(1)
prof.disable()
pstats.Stats(prof).sort_stats("cumulative").print_stats({top})
"""


def empty(top: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        subprocess.run([sys.executable, "-c", _EMPTY.format(top=top)], env=_env(home), check=True)


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(KITARU_HOME=home, BENCH_DATA=home)
    return env


def checkpoints(top: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        code = _CHECKPOINTS.format(workers=str(WORKER.parent), top=top)
        subprocess.run([sys.executable, "-c", code], env=_env(home), check=True)


def journal(sync: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        env = _env(home)
        env["KITARU_DURABILITY"] = "fsync" if sync == "FULL" else "process"
        code = _JOURNAL_SPLIT.format()
        subprocess.run([sys.executable, "-c", code, sync], env=env, check=True)


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
    p.add_argument("what", choices=["checkpoints", "import", "resume", "journal", "empty"])
    p.add_argument("--top", type=int, default=25, help="entries to print")
    p.add_argument("--sync", default="NORMAL", help="journal: SQLite synchronous (NORMAL, FULL)")
    args = p.parse_args()
    if args.what == "checkpoints":
        checkpoints(args.top)
    elif args.what == "import":
        imports(args.top)
    elif args.what == "journal":
        journal(args.sync)
    elif args.what == "empty":
        empty(args.top)
    else:
        resume(args.top)


if __name__ == "__main__":
    main()
