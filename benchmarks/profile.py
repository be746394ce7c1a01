"""Where Kitaru's time goes on its hot paths, to act on what the benchmark shows.

    .venv/bin/python -m benchmarks.profile checkpoints   # cProfile of N=1000 checkpoints
    .venv/bin/python -m benchmarks.profile import        # -X importtime of `import kitaru`
    .venv/bin/python -m benchmarks.profile resume        # CLI resume of a 100-step run killed at 90
    .venv/bin/python -m benchmarks.profile journal       # one commit's SQL: schema variants vs floor

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

_SCHEMA_VARIANTS = """
import json, os, sqlite3, statistics, sys, time
from kitaru.journal._migrations import MIGRATIONS, statements

TYPES = {{"blob": "BLOB", "real": "REAL", "bigint": "INTEGER"}}
OUT = json.dumps({{"i": 0, "text": "x" * 100}}).encode()
ART = ("INSERT INTO artifacts (artifact_id, exec_id, name, version, producer, producer_key, "
       "type_ref, serializer, content_hash, size, uri, created_at, metadata, inline) "
       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
CALL_COLS = ("exec_id, key, seq, name, func, status, started_at, ended_at, run, kind, attempts, "
             "output_artifact, error, traceback, reused_from, metadata")
CALL_GUARDED = (f"INSERT INTO calls ({{CALL_COLS}}) SELECT ?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,? "
                "WHERE EXISTS (SELECT 1 FROM executions WHERE exec_id = ? AND owner = ?)")
CALL_PLAIN = f"INSERT INTO calls ({{CALL_COLS}}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def schema(conn, variant):
    sql = MIGRATIONS[0][1]
    if variant in ("without-rowid", "one-row"):
        sql = sql.replace("    PRIMARY KEY (exec_id, key)\\n);\\n\\nCREATE TABLE waits",
                          "    PRIMARY KEY (exec_id, key)\\n) WITHOUT ROWID;\\n\\nCREATE TABLE waits")
        sql = sql.replace("    metadata TEXT\\n);\\nCREATE INDEX artifacts_exec",
                          "    metadata TEXT\\n) WITHOUT ROWID;\\nCREATE INDEX artifacts_exec")
        assert sql.count("WITHOUT ROWID") == 2, "the schema changed: update this experiment"
    if variant == "one-row":
        sql = sql.replace("    reused_from TEXT,\\n    metadata TEXT,\\n    PRIMARY KEY (exec_id, key)",
                          "    reused_from TEXT,\\n    metadata TEXT,\\n    output BLOB,\\n    PRIMARY KEY (exec_id, key)")
        assert "output BLOB" in sql, "the schema changed: update this experiment"
    for st in statements(sql, TYPES):
        conn.execute(st)
    conn.execute("INSERT INTO executions (exec_id, flow, status, created_at, updated_at, flow_ref, "
                 "stack, orchestrator, owner) VALUES ('kx_1', 'f', 'running', 0, 0, 'm:f', 'local', "
                 "'local', 'me')")


def commit(conn, variant, tag, i):
    key, aid, now = f"step#{{tag}}-{{i}}", f"ka_{{tag}}_{{i:06d}}", time.time()
    call = ("kx_1", key, i, "step", "m:step", "completed", now, now, 1, "checkpoint", 1, aid,
            None, None, None, None)
    conn.execute("BEGIN")
    if variant == "one-row":
        conn.execute(f"INSERT INTO calls ({{CALL_COLS}}, output) VALUES "
                     "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", (*call, OUT))
    else:
        conn.execute(ART, (aid, "kx_1", key, 1, "checkpoint", key, "builtins:dict", "json",
                           "h" * 32, len(OUT), None, now, None, OUT))
        if variant == "no-lease-check":
            conn.execute(CALL_PLAIN, call)
        else:
            conn.execute(CALL_GUARDED, (*call, "kx_1", "me"))
    conn.execute("COMMIT")


def floor_commit(conn, tag, i):
    conn.execute("BEGIN")
    conn.execute("INSERT INTO steps VALUES (?, ?, ?)", (tag, i, OUT))
    conn.execute("COMMIT")


def bench(variant, home, sync):
    path = os.path.join(home, f"{{variant}}-{{sync}}.db")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={{sync}}")
    if variant == "floor":
        conn.execute("CREATE TABLE steps (run TEXT, step INTEGER, output BLOB, PRIMARY KEY (run, step))")
        one = lambda tag, i: floor_commit(conn, tag, i)
    else:
        schema(conn, variant)
        one = lambda tag, i: commit(conn, variant, tag, i)
    if variant == "autocheckpoint-10000":
        conn.execute("PRAGMA wal_autocheckpoint=10000")
    for i in range(200):
        one("warm", i)
    # WAL frames (pages) written per commit, with automatic checkpoints off
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    auto = conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    conn.execute("PRAGMA wal_autocheckpoint=0")
    for i in range(100):
        one("frames", i)
    frames = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1] / 100
    conn.execute(f"PRAGMA wal_autocheckpoint={{auto}}")
    times = []
    for r in range(5):
        t = time.perf_counter()
        for i in range(1000):
            one(f"r{{r}}", i)
        times.append((time.perf_counter() - t) * 1e3)
    conn.close()
    return statistics.median(times), min(times), frames


home = os.environ["KITARU_HOME"]
sync = sys.argv[1] if len(sys.argv) > 1 else "NORMAL"
print(f"1000 commits of one checkpoint's rows, WAL synchronous={{sync}} (µs per commit):")
for variant in ["floor", "current", "no-lease-check", "without-rowid", "one-row",
                "autocheckpoint-10000"]:
    med, low, frames = bench(variant, home, sync)
    print(f"  {{variant:22s}} median {{med:7.1f}}  min {{low:7.1f}}  WAL pages/commit {{frames:4.1f}}")
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


def journal(sync: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        code = _SCHEMA_VARIANTS.format()
        subprocess.run([sys.executable, "-c", code, sync], env=_env(home), check=True)


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
    p.add_argument("--sync", default="NORMAL", help="journal: SQLite synchronous (NORMAL, FULL)")
    args = p.parse_args()
    if args.what == "checkpoints":
        checkpoints(args.top)
    elif args.what == "import":
        imports(args.top)
    elif args.what == "journal":
        journal(args.sync)
    else:
        resume(args.top)


if __name__ == "__main__":
    main()
