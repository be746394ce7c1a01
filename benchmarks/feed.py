"""What the live feed costs a checkpoint call: the feed's side of a call alone, in the
two ways a run can tell its feed about calls.

    .venv/bin/python -m benchmarks --only extras --systems kitaru --no-chart
    .venv/bin/python -m benchmarks.feed [--quick]

- **folded** (what a run does): `Feed.call_started` and `Feed.call_ended`, a dict entry
  and a tuple on the call's path; the writer stores calls that started and ended
  between two writes as numbers, up to 500 to an entry;
- **an entry per call** (what a run did before): a `call_started` and a `call_ended`
  entry for every call, each with its JSON data.

A round is 2,000 calls on a fresh feed of one execution in a SQLite journal: the calls
are timed on the caller's path, then the writer's `flush` (which writes to the journal)
is timed on its own. The report gives, per call, the minimum over the rounds (the
machine's noise only ever adds) and the ratio of the two ways. A checkpoint that does
nothing costs about 43 us on this machine kind (benchmarks/otel.py, "today"), so a
fraction of a microsecond is what the feed may cost.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks._run import progress

CALLS = 2000
WAYS = ("folded", "an entry per call")


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    from kitaru.journal import open_journal

    rounds = 5 if quick else 40
    workdir.mkdir(parents=True, exist_ok=True)
    for old in workdir.glob("feed.db*"):
        old.unlink()
    journal = open_journal(f"sqlite:///{workdir / 'feed.db'}")
    best: dict[str, dict[str, float]] = {w: {"call_us": 1e9, "writer_us": 1e9} for w in WAYS}
    progress(f"  feed: {rounds} rounds of {CALLS:,} calls")
    for r in range(rounds):
        for way in WAYS if r % 2 == 0 else reversed(WAYS):
            call_us, writer_us = _round(journal, way, r)
            best[way]["call_us"] = min(best[way]["call_us"], call_us)
            best[way]["writer_us"] = min(best[way]["writer_us"], writer_us)
    folded, per_call = best["folded"], best["an entry per call"]
    data = {
        "calls": CALLS,
        "rounds": rounds,
        "ways": best,
        "ratio": {
            "call": folded["call_us"] / per_call["call_us"],
            "writer": folded["writer_us"] / per_call["writer_us"],
        },
    }
    rows = [
        f"| {way} | {got['call_us']:.2f} | {got['writer_us']:.2f} |" for way, got in best.items()
    ]
    markdown = "\n".join(
        [
            "| way | us per call, on its path | us per call, in the writer |",
            "|---|---|---|",
            *rows,
            "",
            f"Minimum of {rounds} rounds of {CALLS:,} calls, SQLite journal. Folded / an entry "
            f"per call: {data['ratio']['call']:.2f} on the path, "
            f"{data['ratio']['writer']:.2f} in the writer.",
        ]
    )
    return {"title": "feed: what the live feed costs a call", "markdown": markdown, "data": data}


def _round(journal: Any, way: str, r: int) -> tuple[float, float]:
    from kitaru._events import Feed
    from kitaru.journal import CallRecord

    exec_id, owner = _execution(journal, f"{way}-{r}")
    feed = Feed(journal, exec_id, 1, owner)
    # No writer thread: the bench times the writer's flush itself.
    feed._stop.set()
    feed._thread = threading.current_thread()
    now = time.time()
    calls = [
        CallRecord(
            exec_id=exec_id, key=f"step:{i}", seq=i + 1, name="step", func="bench.step",
            status="completed", started_at=now + i * 1e-5, ended_at=now + i * 1e-5 + 5e-6, run=1,
        )
        for i in range(CALLS)
    ]  # fmt: skip
    started = time.perf_counter()
    if way == "folded":
        for call in calls:
            feed.call_started(call.key, call.name, call.kind, call.started_at)
            feed.call_ended(call)
    else:
        for call in calls:
            feed.add("call_started", call.name, call.key, {"kind": call.kind})
            feed.add(
                "call_ended", call.name, call.key,
                {
                    "status": call.status, "kind": call.kind, "attempts": call.attempts,
                    "duration_s": round(call.ended_at - call.started_at, 6), "error": None,
                },
            )  # fmt: skip
    on_path = time.perf_counter() - started
    started = time.perf_counter()
    feed.flush()
    writer = time.perf_counter() - started
    assert not feed.lost and journal.events(exec_id, limit=1), "the feed wrote nothing"
    return on_path / CALLS * 1e6, writer / CALLS * 1e6


def _execution(journal: Any, tag: str) -> tuple[str, str]:
    from kitaru._ids import new_id
    from kitaru.journal import ExecutionRecord

    exec_id, owner, now = new_id("kx"), f"bench-{tag}", time.time()
    journal.create_execution(
        ExecutionRecord(
            exec_id=exec_id, flow="bench", status="running", created_at=now, updated_at=now,
            flow_ref="bench:flow", stack="local", owner=owner, runs=1,
            artifact_store="file:///unused",
        ),
        [],
    )  # fmt: skip
    return exec_id, owner


def main() -> None:
    parser = argparse.ArgumentParser(description="What the live feed costs a checkpoint call.")
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 40")
    args = parser.parse_args()
    work = Path(__file__).resolve().parent / ".work" / "feed"
    print(bench(args.quick, work)["markdown"])


if __name__ == "__main__":
    main()
