"""A worker's claim with a deep queue: how long taking the next execution takes when
1,000 and when 128,000 executions wait (half of them of a flow the worker does not run).

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.claims [--quick]

For each journal (SQLite, and PostgreSQL as for benchmarks/queues.py), the queue is
filled with 1,000 executions through the journal, then doubled with SQL copies of those
rows up to the deep size (fast to make, the same rows a `flow.submit` writes). Each
sample is one `Journal.claim` of the default queue, timed in this process; the report
gives the median of the samples at each depth and their ratio. A claim reads the head of
its queue through the `executions_ready` index (schema 10), so the ratio should stay
near 1 (on PostgreSQL once the table's statistics are current: the bench runs ANALYZE
after its bulk copy, as autovacuum would); before that index a claim read every queued row (about 25 ms at 30,000 on
SQLite, 28 ms on PostgreSQL, measured on this machine kind).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks._run import progress
from benchmarks.queues import _fresh_database, _postgres_base

SHALLOW = 1000


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    deep = 8 * SHALLOW if quick else 128 * SHALLOW
    samples = 10 if quick else 50
    journals = {"sqlite": f"sqlite:///{workdir / 'claims.db'}"}
    pg = _postgres_base(workdir)
    if pg:
        journals["postgres"] = _fresh_database(pg)
    workdir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"deep": deep, "samples": samples, "journals": {}}
    for name, url in journals.items():
        progress(f"  claims on {name}")
        data["journals"][name] = _one_journal(url, deep, samples)
    rows = [
        f"| {name} | {got['shallow_ms']:.2f} | {got['deep_ms']:.2f} | {got['ratio']:.2f} |"
        for name, got in data["journals"].items()
    ]
    markdown = "\n".join(
        [
            f"| journal | claim ms, {SHALLOW:,} queued | claim ms, {deep:,} queued | ratio |",
            "|---|---|---|---|",
            *rows,
            "",
            f"Median of {samples} claims at each depth; half the queued executions are of a "
            "flow the worker does not run.",
        ]
    )
    return {
        "title": "claims: a worker's claim with a deep queue",
        "markdown": markdown,
        "data": data,
    }


def _one_journal(url: str, deep: int, samples: int) -> dict[str, float]:
    from kitaru.journal import open_journal

    journal = open_journal(url)
    _fill(journal, SHALLOW)
    shallow = _claims(journal, samples)
    rounds = 0
    while _queued(journal) < deep:
        rounds += 1
        _double(journal, f"c{rounds}")
    if url.startswith("postgresql"):
        journal._x("ANALYZE executions")  # what autovacuum does after a bulk load
    deep_ms = _claims(journal, samples)
    return {"shallow_ms": shallow, "deep_ms": deep_ms, "ratio": deep_ms / shallow}


def _fill(journal: Any, n: int) -> None:
    from kitaru._ids import new_id
    from kitaru.journal import ExecutionRecord

    start = time.time()
    for i in range(n):
        at = start + i * 1e-4
        journal.create_execution(
            ExecutionRecord(
                exec_id=new_id("kx"), flow="other" if i % 2 else "agent", status="queued",
                created_at=at, updated_at=at, flow_ref="bench:flow", stack="local",
                owner=None, runs=0, artifact_store="file:///unused",
            ),
            [],
        )  # fmt: skip


def _double(journal: Any, suffix: str) -> None:
    # Copies of every queued row under new ids, queued after them.
    with journal._tx(immediate=True) as conn:
        conn.execute("CREATE TEMP TABLE copies AS SELECT * FROM executions WHERE status = 'queued'")
        conn.execute(
            journal._sql(
                "UPDATE copies SET exec_id = exec_id || ?, updated_at = updated_at + 1000, "
                "created_at = created_at + 1000"
            ),
            (suffix,),
        )
        conn.execute("INSERT INTO executions SELECT * FROM copies")
        conn.execute("DROP TABLE copies")


def _queued(journal: Any) -> int:
    return int(journal._x("SELECT COUNT(*) FROM executions WHERE status = 'queued'").fetchone()[0])


def _claims(journal: Any, samples: int) -> float:
    took = []
    for i in range(samples):
        now = time.time()
        started = time.perf_counter()
        got = journal.claim(
            queue="default", flows=["agent"], owner=f"bench-{i}-{time.monotonic_ns()}",
            worker="bench", now=now, lease_until=now + 30,
        )  # fmt: skip
        took.append((time.perf_counter() - started) * 1e3)
        assert got is not None, "the queue ran dry"
    return statistics.median(took)


def main() -> None:
    parser = argparse.ArgumentParser(description="A worker's claim with a deep queue.")
    parser.add_argument("--quick", action="store_true", help="8,000 deep, 10 claims")
    args = parser.parse_args()
    work = Path(__file__).resolve().parent / ".work" / "claims"
    work.mkdir(parents=True, exist_ok=True)
    for f in work.glob("claims.db*"):
        f.unlink()
    print(bench(args.quick, work)["markdown"])


if __name__ == "__main__":
    main()
