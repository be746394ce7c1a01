"""Queues and workers: executions per second through a queue, and how soon an answered
wait runs again.

    .venv/bin/python -m benchmarks --only extras --systems kitaru,dbos --no-chart
    .venv/bin/python -m benchmarks.queues [--quick] [--no-dbos] [--no-install]  # alone

For each journal (SQLite, and PostgreSQL when `KITARU_TEST_POSTGRES_URL` or
`BENCH_POSTGRES_URL` names one, or `scripts/services/postgres.sh` can start one):

- **throughput**: N executions are submitted to a queue (`flow.submit()`), then two
  `kitaru worker --concurrency 8` processes start and drain it. Executions per second =
  N / (last end - first claim), read from the journal, for a flow with no checkpoint and
  one with ten. Every execution is a process of its own (a forked child), so this is the
  cost of a claim, a fork and the execution's own commits.
- **answer to running**: an execution waits; the bench answers it
  (`KitaruClient().executions.input`, which hands a submitted execution back to its
  queue) and times, from the answer's commit (`answered_at`), the worker's claim and the
  commit of the checkpoint after the wait. Answers go one at a time, with idle workers
  polling every 0.1 s (the default), so this is the latency a person sees, not a queue's.

With `dbos` among the systems (`peers`), DBOS Transact 3.4.0 queues run the same
workloads on the same kinds of database, at DBOS's default polling and at 0.1 s
(benchmarks/_queues_dbos.py); without its venv and with `--no-install` the section
says DBOS was not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _queues_dbos
from benchmarks._run import product_env, progress

REPO = Path(__file__).resolve().parent.parent

FLOWS = """
import kitaru
from kitaru import checkpoint, flow


@checkpoint
def step(i: int) -> int:
    return i


@flow
def empty() -> int:
    return 0


@flow
def ten() -> int:
    return sum(step(i) for i in range(10))


@flow
def gate() -> bool:
    ok = kitaru.wait("ok", schema=bool, question="go on?")
    step(0)
    return ok
"""


def bench(
    quick: bool, workdir: Path, *, peers: Sequence[str] = (), install: bool = False
) -> dict[str, Any]:
    spec = {
        "n": 60 if quick else 500,
        "answers": 5 if quick else 30,
        "workers": 2,
        "concurrency": 8,
    }
    pg = _postgres_base(workdir)
    journals = {"sqlite": f"sqlite:///{workdir / 'sqlite' / 'journal.db'}"}
    if pg:
        journals["postgres"] = _fresh_database(pg)
    dbos = "dbos" in peers and _queues_dbos.ready(install)
    data: dict[str, Any] = {"spec": spec, "journals": {}, "dbos": {}}
    for name, url in journals.items():
        progress(f"  queues on {name}")
        data["journals"][name] = _one_journal(name, url, workdir / name, spec)
        for config in _queues_dbos.CONFIGS if dbos else ():
            progress(f"  {config} queues on {name}")
            peer_url = _fresh_database(pg) if pg and name == "postgres" else None
            got = _queues_dbos.measure(config, peer_url, workdir / config / name, spec)
            data["dbos"].setdefault(config, {})[name] = got
    if "dbos" in peers and not dbos:
        data["dbos_missing"] = "no DBOS environment (run without --no-install to create it)"
    return {
        "title": f"queues: 2 workers of concurrency 8, {spec['n']} executions per flow",
        "markdown": _markdown(data, pg is None),
        "data": data,
    }


def _one_journal(name: str, url: str, where: Path, spec: dict[str, Any]) -> dict[str, Any]:
    project = where / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "qflows.py").write_text(textwrap.dedent(FLOWS))
    env = product_env("kitaru", where / "home", {"KITARU_JOURNAL_URL": url})
    out: dict[str, Any] = {}
    for flow in ("empty", "ten"):
        queue = f"{flow}-{time.monotonic_ns()}"
        ids = _submit(project, env, f"{flow}.submit(queue={queue!r})", spec["n"])
        procs = [
            _worker(project, env, queue, spec["concurrency"], until_empty=True) for _ in range(2)
        ]
        for proc in procs:
            if proc.wait(timeout=1800) != 0:
                raise RuntimeError(f"a worker exited {proc.returncode} on {name}")
        records = _records(url, ids)
        span = max(r.ended_at for r in records) - min(r.claimed_at for r in records)
        out[flow] = {"executions_per_s": len(ids) / span, "span_s": span}
    out["answer"] = _answers(project, env, url, spec)
    return out


def _answers(project: Path, env: dict[str, str], url: str, spec: dict[str, Any]) -> dict[str, Any]:
    from kitaru.client import KitaruClient

    queue = f"gate-{time.monotonic_ns()}"
    procs = [_worker(project, env, queue, spec["concurrency"], until_empty=False) for _ in range(2)]
    try:
        ids = _submit(project, env, f"gate.submit(queue={queue!r})", spec["answers"])
        _until(url, ids, {"waiting"})
        client = KitaruClient(url)
        journal = client.journal
        to_claim: list[float] = []
        to_step: list[float] = []
        for exec_id in ids:
            client.executions.input(exec_id, "ok", True)
            [record] = _until(url, [exec_id], {"completed"})
            [wait] = journal.waits(exec_id)
            answered = wait.answered_at
            assert answered is not None and record.claimed_at is not None
            after = [c for c in journal.calls(exec_id) if c.kind == "checkpoint"]
            to_claim.append(record.claimed_at - answered)
            to_step.append(max(c.ended_at for c in after) - answered)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)
    return {
        "to_claim_s": to_claim,
        "to_next_checkpoint_s": to_step,
        "median_to_claim_s": statistics.median(to_claim),
        "median_to_next_checkpoint_s": statistics.median(to_step),
    }


def _markdown(data: dict[str, Any], no_pg: bool) -> str:
    rows = []
    for name, got in data["journals"].items():
        rows.append(_row("Kitaru, workers poll every 0.1 s", name, got, "claim", "checkpoint"))
        for config, by_db in data["dbos"].items():
            if name in by_db:
                label = _queues_dbos.LABELS[config]
                rows.append(_row(label, name, by_db[name], "recv", "step"))
    goal = all(g["answer"]["median_to_claim_s"] < 0.2 for g in data["journals"].values())
    lines = [
        "| system | database | executions/s, no checkpoint | executions/s, 10 checkpoints "
        "| answer → running again, ms (median) | answer → next checkpoint committed, ms (median) |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Running again: Kitaru's claim by a worker; DBOS's `recv()` returning in the worker "
        "that kept the workflow. Kitaru's answer time is the answer's commit, DBOS's just "
        "before `DBOSClient.send`.",
        "",
        f"Goal (answer to running again under 200 ms at the median): {'met' if goal else 'missed'}.",
    ]
    if "sqlite" in data["dbos"].get("dbos", {}):
        lines += [
            "",
            "DBOS on SQLite stamps `workflow_status` in whole seconds under Python < 3.12 "
            "(`strftime('%s')`), so its spans there are exact to ±1 s.",
        ]
    if data["dbos"]:
        lines += ["", *_ratios(data)]
    if "dbos_missing" in data:
        lines += ["", f"DBOS: not measured ({data['dbos_missing']})."]
    if no_pg:
        lines.append("PostgreSQL: not measured (no server could be started).")
    return "\n".join(lines)


def _row(label: str, db: str, got: dict[str, Any], woke: str, step: str) -> str:
    answer = got["answer"]
    return (
        f"| {label} | {db} | {got['empty']['executions_per_s']:.1f} "
        f"| {got['ten']['executions_per_s']:.1f} | {answer[f'median_to_{woke}_s'] * 1000:.0f} "
        f"| {answer[f'median_to_next_{step}_s'] * 1000:.0f} |"
    )


def _ratios(data: dict[str, Any]) -> list[str]:
    """Kitaru ÷ DBOS: above 1 Kitaru runs more executions per second; below 1 its answer
    reaches the next checkpoint sooner."""
    lines = [
        "| Kitaru ÷ | database | executions/s, no checkpoint | executions/s, 10 checkpoints "
        "| answer → next checkpoint |",
        "|---|---|---|---|---|",
    ]
    for config, by_db in data["dbos"].items():
        for db, peer in by_db.items():
            ours = data["journals"][db]
            latency = (
                ours["answer"]["median_to_next_checkpoint_s"]
                / peer["answer"]["median_to_next_step_s"]
            )
            lines.append(
                f"| {_queues_dbos.LABELS[config]} | {db} "
                f"| {ours['empty']['executions_per_s'] / peer['empty']['executions_per_s']:.2f} "
                f"| {ours['ten']['executions_per_s'] / peer['ten']['executions_per_s']:.2f} "
                f"| {latency:.2f} |"
            )
    lines += [
        "",
        "Executions per second: above 1 Kitaru drains the queue faster. Latency: below 1 "
        "Kitaru runs again sooner.",
    ]
    return lines


# -- plumbing ---------------------------------------------------------------------------
def _submit(project: Path, env: dict[str, str], call: str, count: int) -> list[str]:
    code = (
        f"import json, qflows\nprint(json.dumps([qflows.{call}.exec_id for _ in range({count})]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"submitting failed:\n{done.stderr[-2000:]}")
    ids: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


def _worker(
    project: Path, env: dict[str, str], queue: str, concurrency: int, *, until_empty: bool
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "kitaru", "worker", "--flows", "qflows", "--queue", queue]
    argv += ["--concurrency", str(concurrency), "--json"]
    if until_empty:
        argv.append("--until-empty")
    log = open(project / f"worker-{queue}-{time.monotonic_ns()}.log", "wb")
    return subprocess.Popen(argv, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT)


def _records(url: str, ids: list[str]) -> list[Any]:
    from kitaru.journal import open_journal

    journal = open_journal(url)
    return [r for i in ids if (r := journal.get_execution(i)) is not None]


def _until(url: str, ids: list[str], statuses: set[str], timeout: float = 120) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        records = _records(url, ids)
        if len(records) == len(ids) and {r.status for r in records} <= statuses:
            return records
        if time.monotonic() > deadline:
            raise RuntimeError(f"not {statuses} after {timeout}s: {[r.status for r in records]}")
        time.sleep(0.005)


def _postgres_base(workdir: Path) -> str | None:
    """The test PostgreSQL's URL, starting it if this checkout can."""
    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ.get("KITARU_TEST_POSTGRES_URL")
    if base:
        return base
    started = subprocess.run(
        ["bash", str(REPO / "scripts/services/postgres.sh"), "up"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    env_file = REPO / ".test-services" / "postgres.env"
    if started.returncode != 0 or not env_file.exists():
        progress(f"  no PostgreSQL for the queue bench: {started.stderr.strip()[-300:]}")
        return None
    return env_file.read_text().split("=", 1)[1].strip()


def _fresh_database(base: str) -> str:
    import psycopg

    name = f"bench_queues_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    """This suite alone; a full run writes results/queues.json, a quick one .work/."""
    parser = argparse.ArgumentParser(description="The queue suite alone: Kitaru and DBOS.")
    parser.add_argument("--quick", action="store_true", help="60 executions, 5 answers")
    parser.add_argument("--no-dbos", action="store_true", help="Kitaru only")
    parser.add_argument("--no-install", action="store_true", help="never install DBOS's venv")
    args = parser.parse_args()
    here = REPO / "benchmarks"
    work = here / ".work" / "queues"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    load = os.getloadavg()[0]
    peers = () if args.no_dbos else ("dbos",)
    section = bench(args.quick, work, peers=peers, install=not args.no_install)
    section["load"] = [load, os.getloadavg()[0]]
    out = work / "queues.json" if args.quick else here / "results" / "queues.json"
    out.write_text(json.dumps(section, indent=1) + "\n")
    print(section["markdown"])
    print(f"load average {load:.1f} before, {section['load'][1]:.1f} after; written to {out}")


if __name__ == "__main__":
    main()
