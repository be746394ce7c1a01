"""`journal_stats`, on SQLite and PostgreSQL: the counts `/metrics` shows, folded so
that each finished execution's calls are read once, stay equal to a recount of the
journal's rows as executions finish, resume and take more calls."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kitaru.journal import CallRecord, ExecutionRecord, Journal, open_journal
from kitaru.journal._stats import Folded, JournalStats
from tests.journal.conftest import fresh_postgres_url
from tests.server.hostile import new_exec_id

USAGE = {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 7, "output_tokens": 3}


@pytest.fixture(params=["sqlite", "postgres"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Journal:
    if request.param == "sqlite":
        return open_journal(f"sqlite:///{tmp_path / 'journal.db'}")
    return open_journal(fresh_postgres_url())


def started(journal: Journal, created_at: float, owner: str) -> str:
    exec_id = new_exec_id()
    journal.create_execution(
        ExecutionRecord(exec_id, "f", "running", created_at, created_at, None, "app:f", None,
                        None, None, "local", "local", None, owner, created_at,
                        time.time() + 60, False, 1),
        [],
    )  # fmt: skip
    return exec_id


def call(
    journal: Journal, exec_id: str, seq: int, owner: str, *, status: str = "completed"
) -> None:
    now = time.time()
    meta = USAGE if seq == 2 else {}
    record = CallRecord(exec_id, f"c#{seq}", seq, "c", "app:c", status, now, now + 0.3 * seq,
                        1, kind="llm" if seq == 2 else "checkpoint", metadata=dict(meta))  # fmt: skip
    assert journal.commit_call(record, None, [], owner=owner)


def recount(journal: Journal) -> tuple[Counter[tuple[str, str]], int]:
    calls = [c for e in journal.list_executions(limit=1000) for c in journal.calls(e.exec_id)]
    return Counter((c.kind, c.status) for c in calls), sum(
        c.metadata.get("input_tokens", 0) for c in calls
    )


def shown(stats: JournalStats) -> tuple[Counter[tuple[str, str]], int]:
    counts = Counter({k: c.count for k, c in stats.calls.calls.items()})
    return counts, sum(m.input_tokens for m in stats.calls.models.values())


def test_finished_executions_are_read_once_and_counts_stay_right(journal: Journal) -> None:
    old = time.time() - 3600  # older than the fold margin
    done = started(journal, old, "a")
    call(journal, done, 1, "a")
    call(journal, done, 2, "a")
    assert journal.finish(done, owner="a", status="completed", now=time.time())
    failed = started(journal, old, "b")
    call(journal, failed, 1, "b", status="failed")
    assert journal.finish(failed, owner="b", status="failed", now=time.time())
    waiting = started(journal, old, "c")
    call(journal, waiting, 1, "c")
    assert journal.finish(waiting, owner="c", status="waiting", now=time.time())
    recent = started(journal, time.time(), "d")
    call(journal, recent, 1, "d")

    folded = Folded()
    first = journal.journal_stats(folded)  # type: ignore[attr-defined]
    assert shown(first) == recount(journal)
    assert folded.open == {failed, waiting} and set(folded.idle) == {failed, waiting}
    assert sum(c.count for c in folded.totals.calls.values()) == 2  # `done`'s, read once

    # Nothing changed: a pass reads no call of a finished or idle execution again.
    statements: list[str] = []
    read = journal._x  # type: ignore[attr-defined]

    def spy(sql: str, params: Any = ()) -> Any:
        statements.append(sql)
        return read(sql, params)

    journal._x = spy  # type: ignore[attr-defined]
    try:
        assert shown(journal.journal_stats(folded)) == recount(journal)  # type: ignore[attr-defined]
    finally:
        del journal._x  # type: ignore[attr-defined]
    assert statements and not [s for s in statements if "c.exec_id IN" in s]

    # The failed one is resumed and its call runs again (its row replaced); the waiting
    # one takes two more calls and completes; the recent one takes a model call.
    now = time.time()
    assert journal.take_lease(failed, owner="b2", expected_owner=None, statuses=("failed",),
                              now=now, lease_until=now + 60)  # fmt: skip
    call(journal, failed, 1, "b2")
    assert journal.finish(failed, owner="b2", status="completed", now=time.time())
    assert journal.take_lease(waiting, owner="c2", expected_owner=None, statuses=("waiting",),
                              now=now, lease_until=now + 60)  # fmt: skip
    call(journal, waiting, 2, "c2")
    call(journal, waiting, 3, "c2")
    assert journal.finish(waiting, owner="c2", status="completed", now=time.time())
    call(journal, recent, 2, "d")

    second = journal.journal_stats(folded)  # type: ignore[attr-defined]
    assert shown(second) == recount(journal)
    assert folded.open == set()
    assert shown(second)[0][("checkpoint", "failed")] == 0
    # A process that folds from scratch sees the same.
    assert shown(journal.journal_stats(Folded())) == recount(journal)  # type: ignore[attr-defined]
