"""Retention throughput: executions a `kitaru gc` deletes per second, rows and bytes.

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.gc [--quick]

For each journal (SQLite, and PostgreSQL as for benchmarks/queues.py), a journal and a
local artifact store are filled with the month of executions tests/retention_world.py
makes (20,000; 2,000 in quick mode): calls, answered waits, logs, feed events, cache
entries, replays and cache hits that share objects, one execution in five with objects
in the store. The clock runs around one `kitaru._retention.collect` (what `kitaru gc
--older-than 30d` does, in this process): every old execution's rows in batches of 200
and every object no remaining row names. The report gives executions and objects
deleted per second, and checks that the journal and the store agree afterwards.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks._run import progress
from benchmarks.queues import _fresh_database, _postgres_base

REPO = Path(__file__).resolve().parent.parent


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    n = 2000 if quick else 20000
    journals = {"sqlite": f"sqlite:///{workdir / 'gc.db'}"}
    pg = _postgres_base(workdir)
    if pg:
        journals["postgres"] = _fresh_database(pg)
    workdir.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"executions": n, "journals": {}}
    for name, url in journals.items():
        progress(f"  gc on {name}")
        data["journals"][name] = _one_journal(url, workdir / f"store-{name}", n)
    rows = [
        f"| {name} | {got['deleted']:,} | {got['seconds']:.2f} | "
        f"{got['executions_per_s']:,.0f} | {got['objects_per_s']:,.0f} |"
        for name, got in data["journals"].items()
    ]
    markdown = "\n".join(
        [
            "| journal | executions deleted | seconds | executions/s | objects/s |",
            "|---|---|---|---|---|",
            *rows,
            "",
            f"One `kitaru gc --older-than 30d` over {n:,} executions (about 9 in 10 old), "
            "artifacts on local disk.",
        ]
    )
    return {"title": "gc: executions deleted per second", "markdown": markdown, "data": data}


def _one_journal(url: str, store_dir: Path, n: int) -> dict[str, Any]:
    from kitaru import _retention
    from kitaru.artifacts._local import LocalArtifactStore
    from kitaru.journal import open_journal
    from tests import retention_world

    journal: Any = open_journal(url)
    shutil.rmtree(store_dir, ignore_errors=True)
    store = LocalArtifactStore(store_dir.as_uri())
    store.check()
    made = retention_world.build(journal, store, n)
    if url.startswith("postgresql"):
        journal._x("ANALYZE")  # what autovacuum does after a bulk load
    started = time.perf_counter()
    report = _retention.collect(journal, older_than=30 * 86400)
    seconds = time.perf_counter() - started
    left = retention_world.check(journal, store)
    assert left == made.keep, "the journal and the store disagree after gc"
    journal.close()
    deleted = len(report.deleted)
    return {
        "deleted": deleted,
        "objects": report.objects_deleted,
        "seconds": seconds,
        "executions_per_s": deleted / seconds,
        "objects_per_s": report.objects_deleted / seconds,
    }


def main() -> None:
    """This suite alone; a full run writes results/gc.json, a quick one .work/."""
    parser = argparse.ArgumentParser(description="Retention throughput on SQLite and PostgreSQL.")
    parser.add_argument("--quick", action="store_true", help="2,000 executions, not 20,000")
    args = parser.parse_args()
    here = REPO / "benchmarks"
    work = here / ".work" / "gc"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    section = bench(args.quick, work)
    out = work / "gc.json" if args.quick else here / "results" / "gc.json"
    out.write_text(json.dumps(section, indent=1) + "\n")
    print(section["markdown"])


if __name__ == "__main__":
    main()
