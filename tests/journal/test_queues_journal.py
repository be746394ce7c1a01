"""Queues and workers, the same on SQLite, PostgreSQL and through a server: what a
worker claims and in which order, the limits a claim obeys, and the records `kitaru
queues` shows. Each test uses queues of its own names, as workers of other tests may
share a journal's default queue."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from kitaru._ids import new_id
from kitaru.journal import (
    ExecutionRecord,
    Journal,
    QueueRecord,
    WorkerRecord,
    _connect,
    open_journal,
)
from tests.forked import at_once
from tests.journal.conftest import fresh_postgres_url
from tests.journal.test_conformance import call, execution


def queued(queue: str | None, flow: str = "agent", **kw: object) -> ExecutionRecord:
    """An execution waiting for a worker, as `flow.submit()` records it."""
    fields = {"owner": None, "status": "queued", "lease_until": None, "runs": 0, **kw}
    return execution(flow, queue=queue, **fields)


def owner() -> str:
    """A new owner token, as a worker makes one for the child it claims for."""
    return f"worker-host:4242:0:{new_id('n')[-8:]}"


def take(
    journal: Journal, queue: str, flows: tuple[str, ...] = ("agent",), *, by: str | None = None
) -> tuple[ExecutionRecord | None, str]:
    token = by or owner()
    now = time.time()
    claimed = journal.claim(
        queue=queue, flows=flows, owner=token, worker="w1", now=now, lease_until=now + 30
    )
    return claimed, token


def test_claims_take_the_highest_priority_first_then_the_longest_waiting(
    journal: Journal,
) -> None:
    now = time.time()
    low_old = queued("order", priority=0, updated_at=now - 40)
    low_new = queued("order", priority=0, updated_at=now - 30)
    high_new = queued("order", priority=5, updated_at=now - 10)
    high_old = queued("order", priority=5, updated_at=now - 20)
    for e in (low_new, high_new, low_old, high_old):
        journal.create_execution(e, [])
    order = [take(journal, "order")[0] for _ in range(5)]
    assert [e.exec_id if e else None for e in order] == [
        high_old.exec_id,
        high_new.exec_id,
        low_old.exec_id,
        low_new.exec_id,
        None,
    ]
    first = order[0]
    assert first is not None
    assert (first.status, first.worker, first.runs, first.queue) == ("running", "w1", 1, "order")
    assert first.claimed_at is not None and first.owner is not None


def test_a_claimed_execution_is_not_claimed_twice(journal: Journal) -> None:
    e = queued("once")
    journal.create_execution(e, [])
    results: list[ExecutionRecord | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(take(journal, "once")[0])) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.exec_id for r in results if r is not None] == [e.exec_id]
    assert take(journal, "once")[0] is None
    got = journal.get_execution(e.exec_id)
    assert got is not None and (got.status, got.runs) == ("running", 1)


def test_a_claim_takes_only_the_flows_it_names_from_its_own_queue(journal: Journal) -> None:
    agent, report = queued("mine", "agent"), queued("mine", "report")
    elsewhere = queued("theirs", "report")
    for e in (agent, report, elsewhere):
        journal.create_execution(e, [])
    assert take(journal, "mine", ("other",))[0] is None
    assert take(journal, "mine", ())[0] is None
    got, _ = take(journal, "mine", ("report", "other"))
    assert got is not None and got.exec_id == report.exec_id
    assert take(journal, "mine", ("report",))[0] is None  # not the other queue's
    got, _ = take(journal, "theirs", ("report",))
    assert got is not None and got.exec_id == elsewhere.exec_id


def test_executions_without_a_queue_wait_in_the_default_one(journal: Journal) -> None:
    e = queued(None, flow=new_id("flow"))  # a flow of its own: other tests share `default`
    journal.create_execution(e, [])
    got, _ = take(journal, "default", (e.flow,))
    assert got is not None and got.exec_id == e.exec_id


def test_executions_for_an_orchestrator_or_cancelled_are_not_claimed(journal: Journal) -> None:
    submitted = queued("skip", run_id="job-1", orchestrator="kubernetes")
    cancelled = queued("skip", cancel_requested=True)
    failed = queued("skip", status="failed")
    for e in (submitted, cancelled, failed):
        journal.create_execution(e, [])
    assert take(journal, "skip")[0] is None


def test_a_queue_runs_at_most_its_concurrency(journal: Journal) -> None:
    now = time.time()
    journal.put_queue(QueueRecord("narrow", concurrency=2, created_at=now, updated_at=now))
    for _ in range(3):
        journal.create_execution(queued("narrow"), [])
    first, first_owner = take(journal, "narrow")
    second, _ = take(journal, "narrow")
    assert first is not None and second is not None
    assert take(journal, "narrow")[0] is None
    assert journal.finish(first.exec_id, owner=first_owner, status="completed", now=time.time())
    assert take(journal, "narrow")[0] is not None


def test_a_queue_starts_at_most_its_rate_per_minute(journal: Journal) -> None:
    now = time.time()
    journal.put_queue(QueueRecord("slow", rate_per_minute=2, created_at=now, updated_at=now))
    for _ in range(3):
        journal.create_execution(queued("slow"), [])
    started = [take(journal, "slow") for _ in range(2)]
    for record, token in started:
        assert record is not None
        assert journal.finish(record.exec_id, owner=token, status="completed", now=time.time())
    # Nothing runs, yet two started within the minute.
    assert take(journal, "slow")[0] is None


def test_the_claimer_drives_the_execution_with_its_own_owner_token(journal: Journal) -> None:
    e = queued("drive")
    journal.create_execution(e, [])
    got, token = take(journal, "drive")
    assert got is not None
    now = time.time()
    assert journal.heartbeat(e.exec_id, owner=owner(), now=now, lease_until=now + 30) is None
    assert journal.heartbeat(e.exec_id, owner=token, now=now, lease_until=now + 30) is False
    assert journal.commit_call(call(e.exec_id, "step", 0, None), None, [], owner=token)
    assert not journal.finish(e.exec_id, owner=owner(), status="completed", now=time.time())
    assert journal.finish(e.exec_id, owner=token, status="completed", now=time.time())
    done = journal.get_execution(e.exec_id)
    assert done is not None and (done.status, done.owner) == ("completed", None)
    assert [c.key for c in journal.calls(e.exec_id)] == ["step"]


def test_queue_limits_are_stored_replaced_listed_and_deleted(journal: Journal) -> None:
    journal.put_queue(QueueRecord("limits-b", concurrency=3, created_at=1.0, updated_at=1.0))
    journal.put_queue(QueueRecord("limits-a", rate_per_minute=60, created_at=2.0, updated_at=2.0))
    journal.put_queue(QueueRecord("limits-b", rate_per_minute=10, created_at=5.0, updated_at=6.0))
    # Replacing the limits keeps when the queue was created.
    assert journal.get_queue("limits-b") == QueueRecord("limits-b", None, 10, 1.0, 6.0)
    names = [q.name for q in journal.list_queues() if q.name.startswith("limits-")]
    assert names == ["limits-a", "limits-b"]
    assert journal.delete_queue("limits-b")
    assert not journal.delete_queue("limits-b")
    assert journal.get_queue("limits-b") is None
    assert journal.get_queue("never-set") is None


def test_workers_report_starting_running_and_stopping(journal: Journal) -> None:
    name = new_id("worker")
    first = WorkerRecord(name, "host-a", 10, ["default", "gpu"], ["agent"], 4, 0, 1.0, 1.0)
    journal.put_worker(first)
    assert [w for w in journal.list_workers() if w.name == name] == [first]
    journal.worker_seen(name, running=3, now=2.0)
    (seen,) = [w for w in journal.list_workers() if w.name == name]
    assert (seen.running, seen.seen_at, seen.stopped_at) == (3, 2.0, None)
    journal.worker_seen(name, running=0, now=3.0, stopped=True)
    (stopped,) = [w for w in journal.list_workers() if w.name == name]
    assert (stopped.running, stopped.stopped_at) == (0, 3.0)
    # A worker started again under the same name replaces its record.
    again = WorkerRecord(name, "host-b", 11, ["default"], ["agent", "report"], 2, 0, 4.0, 4.0)
    journal.put_worker(again)
    assert [w for w in journal.list_workers() if w.name == name] == [again]


def _start_worker(url: str, name: str, pid: int, start: Any) -> None:
    journal = _connect(url)  # a connection of this process's own
    start.wait()
    journal.put_worker(WorkerRecord(name, "host", pid, ["default"], ["agent"], 1, 0, 1.0, 1.0))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_workers_starting_under_one_name_at_once_both_start(
    backend: str, tmp_path: Path
) -> None:
    # Recording a worker was a DELETE then an INSERT: two starting at the same moment
    # both found no row, and on PostgreSQL the second insert failed on the name (about
    # one round in two, two forked processes behind a barrier).
    url = fresh_postgres_url() if backend == "postgres" else f"sqlite:///{tmp_path / 'j.db'}"
    _connect(url).close()  # made once, before the workers; no connection is forked
    failed = []
    for round_ in range(30):
        codes = at_once(_start_worker, [(url, f"twin-{round_}", pid) for pid in (1, 2)])
        failed += [(round_, code) for code in codes if code != 0]
    assert failed == []
    listed = [w for w in open_journal(url).list_workers() if w.name.startswith("twin-")]
    assert sorted(w.name for w in listed) == sorted(f"twin-{r}" for r in range(30))


def test_queue_counts_show_waiting_running_and_started(journal: Journal) -> None:
    now = time.time()
    oldest = queued("counted", updated_at=now - 50)
    journal.create_execution(oldest, [])
    journal.create_execution(queued("counted", priority=1, updated_at=now - 10), [])
    journal.create_execution(queued("counted", updated_at=now - 5), [])
    journal.create_execution(queued("counted-too"), [])
    claimed, _ = take(journal, "counted")
    assert claimed is not None and claimed.exec_id != oldest.exec_id
    counts = journal.queue_counts(time.time())
    assert counts["counted"] == {
        "depth": 2,
        "running": 1,
        "started": 1,
        "oldest": oldest.updated_at,
    }
    assert counts["counted-too"]["depth"] == 1
    assert counts["counted-too"]["running"] == 0


def test_a_queued_record_that_names_an_owner_does_not_block_its_queue(journal: Journal) -> None:
    # A write token records an execution queued under an owner, first in line (the top
    # priority, the oldest): no claim can take it, and it must not stop every claim of
    # the queue behind it.
    blocker = queued("jammed", priority=1_000_000, updated_at=1.0, owner=owner())
    waiting = queued("jammed")
    for e in (blocker, waiting):
        journal.create_execution(e, [])
    got, _ = take(journal, "jammed")
    assert got is not None and got.exec_id == waiting.exec_id
    still = journal.get_execution(blocker.exec_id)
    assert still is not None and still.status == "queued"
