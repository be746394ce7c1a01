"""Issue 22, "speed where users will feel it next": each path a user waits on, as a ratio
to its own floor measured in the same run, against its goal.

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.speed [--quick] [--only list,replay]

- **empty execution**: `flow.run(1)` of a flow returning its argument, in process, start
  to finish; its floor is the SQLite commits that run makes (counted from the journal's
  own statements), each timed alone as one WAL INSERT + COMMIT at synchronous=NORMAL.
- **server, 8 clients**: checkpoint calls recorded through `kitaru server` (HttpJournal,
  8 flows at once) against the same calls on the direct SQLite journal, 8 threads.
- **replay, per reused step**: replay from the last step of a 10-step and an N-step run;
  the slope between them (seven replays each; also in process CPU time, which a busy
  machine disturbs less).
- **fsync mode per checkpoint** (`KITARU_DURABILITY=fsync`) against one WAL INSERT +
  COMMIT at synchronous=FULL, both as the slope between N=10 and N=1000 steps.
- **`kitaru executions list`**, whole process, against `python -c pass`.
- **per checkpoint on PostgreSQL**, beside DBOS on the same server when its venv exists.

Every figure is the median of its samples; the goal table says met, or by how much not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _envs
from benchmarks._report import target_row
from benchmarks._run import WORKERS, call, product_env, progress, run

HERE = Path(__file__).resolve().parent
SPEED = WORKERS / "w_speed.py"


def bench(
    quick: bool,
    workdir: Path,
    peers: Sequence[str] = (),
    install: bool = False,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every path (or those in `only`); one that fails is reported, the rest measured."""
    data: dict[str, Any] = {}
    for name, fn in (
        ("empty", _empty),
        ("server", _server),
        ("replay", _replay),
        ("fsync", _fsync),
        ("list", _list),
        ("postgres", lambda q, w: _postgres(q, w, peers, install)),
    ):
        if only is not None and name not in only:
            continue
        progress(f"  speed: {name}")
        shutil.rmtree(workdir / name, ignore_errors=True)
        try:
            data[name] = fn(quick, workdir / name)
        except Exception as exc:  # one path failing leaves the others measured
            progress(f"    {name} failed: {exc}")
            data[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    goals = targets(data)
    return {
        "title": "speed: the paths users feel (issue 22)",
        "markdown": markdown(data, goals),
        "data": {**data, "targets": goals},
    }


def _kitaru(task: str, spec: dict[str, Any], where: Path, **env: str) -> dict[str, Any]:
    where.mkdir(parents=True, exist_ok=True)
    done = run(
        [sys.executable, str(SPEED), task, json.dumps(spec)],
        product_env("kitaru", where, env),
        timeout=1800,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{task}: exit {done.returncode}: {done.tail()}")
    return done.result()


def _empty(quick: bool, where: Path) -> dict[str, Any]:
    return _kitaru("empty", {"runs": 200 if quick else 1000}, where)


def _server(quick: bool, where: Path) -> dict[str, Any]:
    return _kitaru("server", {"commits": 400 if quick else 2000, "clients": 8}, where)


def _replay(quick: bool, where: Path) -> dict[str, Any]:
    big = 100 if quick else 1000
    where.mkdir(parents=True, exist_ok=True)
    # Seven replays per N: with three, one slow replay on a busy machine moved the slope
    # by more than the cost measured (quick runs gave negative slopes).
    spec = {"ns": [10, big], "warmup": [3], "inner": 7}
    res = call("kitaru", "replay", spec, product_env("kitaru", where), timeout=1800).result()

    def slope(key: str) -> float:
        small, large = (statistics.median(res[key][str(n)]) for n in (10, big))
        return (large - small) / (big - 10) * 1e6

    return {
        "ns": [10, big],
        "per_step_us": slope("totals_s"),
        "per_step_cpu_us": slope("cpu_s"),  # the process's CPU time alone
        **res,
    }


def _per_checkpoint(product: str, n: int, env: dict[str, str], spec: dict[str, Any]) -> float:
    """One run of N small checkpoints in a fresh process: µs per step over the plain loop."""
    cell_spec = {**spec, "payloads": ["small"], "ns": {"small": [n]}, "inner": {"small": 3}}
    done = call(product, "overhead", cell_spec, env, timeout=1800).result()
    return float(done["cells"]["small"][str(n)]["per_step_us"])


def _paired(rounds: int, ours: Any, theirs: Any) -> dict[str, Any]:
    """Both sides in turn, round by round (a noisy minute lands on both); the median of
    each side and of the per-round ratios."""
    a, b = [], []
    for r in range(rounds):
        for side in (ours, theirs) if r % 2 == 0 else (theirs, ours):
            (a if side is ours else b).append(side())
    return {
        "kitaru_us": statistics.median(a),
        "other_us": statistics.median(b),
        "ratio": statistics.median(x / y for x, y in zip(a, b, strict=True)),
        "samples": {"kitaru": a, "other": b},
    }


def _fresh(where: Path, name: str) -> Path:
    path = where / f"{name}-{time.monotonic_ns()}"
    path.mkdir(parents=True)
    return path


def _fsync(quick: bool, where: Path) -> dict[str, Any]:
    n = 100 if quick else 1000

    def ours() -> float:
        env = product_env("kitaru", _fresh(where, "kitaru"), {"KITARU_DURABILITY": "fsync"})
        return _per_checkpoint("kitaru", n, env, {})

    def floor() -> float:
        env = product_env("floor", _fresh(where, "floor"))
        return _per_checkpoint("floor", n, env, {"variant": "sqlite_wal_full"})

    got = _paired(2 if quick else 3, ours, floor)
    return {"n": n, **got, "floor_us": got["other_us"]}


def _list(quick: bool, where: Path) -> dict[str, Any]:
    where.mkdir(parents=True, exist_ok=True)
    env = product_env("kitaru", where)
    # Some executions to list, as a user has them.
    _kitaru("empty", {"runs": 20}, where)
    samples = 5 if quick else 11
    listed, bare = [], []
    run([sys.executable, "-m", "kitaru", "executions", "list"], env)  # warm-up (bytecode)
    for _ in range(samples):
        done = run([sys.executable, "-m", "kitaru", "executions", "list"], env)
        if done.returncode != 0:
            raise RuntimeError(f"kitaru executions list: exit {done.returncode}: {done.tail()}")
        listed.append(done.wall_s)
        bare.append(run([sys.executable, "-c", "pass"], env).wall_s)
    whole, interp = statistics.median(listed), statistics.median(bare)
    return {"whole_s": whole, "bare_s": interp, "ratio": whole / interp, "samples": samples}


def _postgres(quick: bool, where: Path, peers: Sequence[str], install: bool) -> dict[str, Any]:
    from benchmarks.queues import _fresh_database, _postgres_base

    base = _postgres_base(where)
    if base is None:
        return {"error": "no PostgreSQL (BENCH_POSTGRES_URL, KITARU_TEST_POSTGRES_URL)"}
    n = 100 if quick else 1000
    where.mkdir(parents=True, exist_ok=True)

    def ours() -> float:
        url = _fresh_database(base)
        env = product_env("kitaru", _fresh(where, "kitaru"), {"KITARU_JOURNAL_URL": url})
        return _per_checkpoint("kitaru", n, env, {})

    try:
        # DBOS runs beside it when its venv is there (installed only for a run with DBOS).
        _envs.ensure("dbos", install=install and "dbos" in peers)
    except (Exception, SystemExit) as exc:  # (ensure exits with its one-line reason)
        return {"n": n, "kitaru_us": ours(), "dbos": f"not measured: {exc}"[:300]}

    def dbos() -> float:
        url = _fresh_database(base).replace("postgresql://", "postgresql+psycopg://", 1)
        env = product_env("dbos", _fresh(where, "dbos"), {"BENCH_DBOS_URL": url})
        return _per_checkpoint("dbos", n, env, {})

    got = _paired(2 if quick else 3, ours, dbos)
    return {"n": n, **got, "dbos_us": got["other_us"]}


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of the issue against this run; a missed one says by how much."""
    rows: list[dict[str, Any]] = []

    def add(
        name: str, goal: str, value: float | None, limit: float, unit: str, lower: bool = True
    ) -> None:
        rows.append(target_row(name, goal, value, limit, unit, lower=lower, digits=2))

    def get(section: str, key: str) -> float | None:
        value = data.get(section, {}).get(key)
        return float(value) if isinstance(value, (int, float)) else None

    add("empty execution, in process", "<= 200 µs", get("empty", "median_us"), 200, "µs")
    add("empty execution / its SQLite commits alone", "<= 3x", get("empty", "ratio"), 3, "x")
    add(
        "checkpoints/s through the server, 8 clients / direct SQLite",
        ">= 0.5x",
        get("server", "ratio"),
        0.5,
        "x",
        lower=False,
    )
    add("replay, per reused step", "<= 8 µs", get("replay", "per_step_us"), 8, "µs")
    add(
        "fsync mode per checkpoint / SQLite FULL floor",
        "<= 1.15x",
        get("fsync", "ratio"),
        1.15,
        "x",
    )
    add("`kitaru executions list`, whole process", "<= 0.1 s", get("list", "whole_s"), 0.1, "s")
    add("`kitaru executions list` / bare interpreter", "<= 6x", get("list", "ratio"), 6, "x")
    add("per checkpoint on PostgreSQL", "<= 150 µs", get("postgres", "kitaru_us"), 150, "µs")
    return rows  # fmt: skip


def markdown(data: dict[str, Any], goals: list[dict[str, Any]]) -> str:
    lines = ["| path | measured | floor / peer | ratio |", "|---|---:|---:|---:|"]

    def row(label: str, section: str, ours: str, theirs: str, ratio: str, unit: str) -> None:
        got = data.get(section, {})
        if "error" in got:
            lines.append(f"| {label} | {got['error']} | | |")
            return
        a, b, r = got.get(ours), got.get(theirs), got.get(ratio)

        def fmt(v: Any) -> str:
            return f"{v:,.1f} {unit}" if isinstance(v, (int, float)) else str(v or "-")

        lines.append(
            f"| {label} | {fmt(a)} | {fmt(b)} | {f'{r:.2f}x' if isinstance(r, float) else '-'} |"
        )

    row("empty execution (flow.run), in process", "empty", "median_us", "floor_us", "ratio", "µs")
    row(
        "checkpoints/s, server, 8 clients (vs direct SQLite)",
        "server",
        "server_per_s",
        "direct_per_s",
        "ratio",
        "/s",
    )
    row("replay, per reused step", "replay", "per_step_us", "-", "-", "µs")
    row("replay, per reused step (process CPU time)", "replay", "per_step_cpu_us", "-", "-", "µs")
    row(
        "fsync mode per checkpoint (vs WAL FULL floor)",
        "fsync",
        "kitaru_us",
        "floor_us",
        "ratio",
        "µs",
    )
    row(
        "`kitaru executions list`, whole process (vs `python -c pass`)",
        "list",
        "whole_s",
        "bare_s",
        "ratio",
        "s",
    )
    row(
        "per checkpoint on PostgreSQL (vs DBOS on PostgreSQL)",
        "postgres",
        "kitaru_us",
        "dbos_us",
        "ratio",
        "µs",
    )
    if isinstance(data.get("postgres", {}).get("dbos"), str):
        lines.append(f"\nDBOS on PostgreSQL: {data['postgres']['dbos']}")
    empty = data.get("empty", {})
    if "commits" in empty:
        lines.append(
            f"\nThe empty execution makes {empty['commits']} commits; one alone costs "
            f"{empty['commit_us']:.1f} µs here."
        )
    lines += ["", "| goal | target | measured | met |", "|---|---|---:|---|"]
    for g in goals:
        met = "not measured" if g["met"] is None else ("met" if g["met"] else f"missed, {g['gap']}")
        lines.append(f"| {g['target']} | {g['goal']} | {g['measured']} | {met} |")
    return "\n".join(lines)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer samples, N <= 100")
    parser.add_argument("--no-install", action="store_true", help="never install DBOS's venv")
    parser.add_argument(
        "--only", help="comma-separated paths: empty,server,replay,fsync,list,postgres"
    )
    args = parser.parse_args()
    work = HERE / ".work" / "speed"
    started = time.time()
    only = args.only.split(",") if args.only else None
    out = bench(args.quick, work, peers=("dbos",), install=not args.no_install, only=only)
    # A full run's figures are kept beside the other suites'; a quick one stays in .work.
    where = work if args.quick else HERE / "results"
    where.mkdir(parents=True, exist_ok=True)
    (where / "speed.json").write_text(json.dumps(out["data"], indent=1) + "\n")
    print(out["markdown"])
    print(f"\n({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
