"""What every journal backend must do, run against SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

from kitaru._ids import new_id
from kitaru.journal import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    Journal,
    LogRecord,
    WaitRecord,
)
from kitaru.journal._records import call_output_id


def execution(flow: str = "agent", owner: str | None = "me", **kw: object) -> ExecutionRecord:
    now = time.time()
    record = ExecutionRecord(
        exec_id=new_id("kx"),
        flow=flow,
        status="running",
        created_at=now,
        updated_at=now,
        flow_ref=f"mod:{flow}",
        stack="local",
        owner=owner,
        lease_until=now + 30,
        runs=1,
        artifact_store="file:///tmp/unused",
    )
    for key, value in kw.items():
        setattr(record, key, value)
    return record


def artifact(
    exec_id: str,
    name: str,
    version: int = 1,
    producer: str = "checkpoint",
    data: bytes = b'{"a":1}',
    seq: int | None = None,
) -> ArtifactRecord:
    return ArtifactRecord(
        artifact_id=call_output_id(exec_id, seq) if seq is not None else new_id("ka"),
        exec_id=exec_id,
        name=name,
        version=version,
        producer=producer,
        producer_key=name,
        type_ref="builtins:dict",
        serializer="json",
        content_hash="h",
        size=len(data),
        uri=None,
        created_at=time.time(),
        inline=data,
    )


def call(
    exec_id: str, key: str, seq: int, output: ArtifactRecord | None, status: str = "completed"
) -> CallRecord:
    return CallRecord(
        exec_id=exec_id,
        key=key,
        seq=seq,
        name=key.split("#", maxsplit=1)[0],
        func="mod:f",
        status=status,
        started_at=1.0,
        ended_at=2.0,
        run=1,
        output_artifact=output.artifact_id if output else None,
        metadata={"tokens": 3},
    )


def test_create_get_and_list_executions(journal: Journal) -> None:
    a = execution("alpha", metadata={"k": "v"})
    inp = artifact(a.exec_id, "topic", producer="input")
    journal.create_execution(a, [inp])
    b = execution("beta")
    journal.create_execution(b, [])

    got = journal.get_execution(a.exec_id)
    assert got is not None and got.flow == "alpha" and got.metadata == {"k": "v"}
    assert journal.get_execution("kx_missing") is None
    assert [e.exec_id for e in journal.list_executions()] == [b.exec_id, a.exec_id]
    assert [e.exec_id for e in journal.list_executions(flow="alpha")] == [a.exec_id]
    assert [e.exec_id for e in journal.list_executions(limit=1)] == [b.exec_id]
    assert [x.name for x in journal.list_artifacts(a.exec_id)] == ["topic"]


def test_commit_call_stores_call_output_and_logs_atomically(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    out = artifact(e.exec_id, "step", seq=1)
    logs = [LogRecord(e.exec_id, "step", 1, time.time(), "stdout", "hello\n")]
    assert journal.commit_call(call(e.exec_id, "step", 1, out), out, logs, owner="me")

    [stored] = journal.calls(e.exec_id)
    assert stored.key == "step" and stored.metadata == {"tokens": 3}
    assert stored.output is not None and stored.output.inline == b'{"a":1}'
    assert [g.text for g in journal.logs(e.exec_id)] == ["hello\n"]
    # The output is an artifact like any other: by id, in listings, by name.
    got = journal.get_artifact(out.artifact_id)
    assert got is not None and got.inline == b'{"a":1}' and got.name == "step"
    assert [a.artifact_id for a in journal.list_artifacts(e.exec_id)] == [out.artifact_id]
    found = journal.find_artifact(e.exec_id, "step")
    assert found is not None and found.artifact_id == out.artifact_id
    assert journal.get_artifact(call_output_id(e.exec_id, 2)) is None


def test_a_process_that_lost_its_lease_cannot_write(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    out = artifact(e.exec_id, "step", seq=1)
    assert not journal.commit_call(call(e.exec_id, "step", 1, out), out, [], owner="someone-else")
    assert journal.calls(e.exec_id) == []
    assert journal.get_artifact(out.artifact_id) is None
    assert not journal.finish(e.exec_id, owner="someone-else", status="completed", now=time.time())
    assert journal.heartbeat(e.exec_id, owner="someone-else", now=1, lease_until=2) is None


def test_failed_call_is_replaced_when_it_runs_again(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    journal.commit_call(call(e.exec_id, "step", 1, None, status="failed"), None, [], owner="me")
    out = artifact(e.exec_id, "step", seq=1)
    journal.commit_call(call(e.exec_id, "step", 1, out), out, [], owner="me")
    [stored] = journal.calls(e.exec_id)
    assert stored.status == "completed" and stored.output_artifact == out.artifact_id


def test_lease_is_compare_and_swap(journal: Journal) -> None:
    e = execution(owner=None, status="failed")
    journal.create_execution(e, [])
    now = time.time()
    results: list[bool] = []

    def take(owner: str) -> None:
        results.append(
            journal.take_lease(
                e.exec_id,
                owner=owner,
                expected_owner=None,
                statuses=("failed",),
                now=now,
                lease_until=now + 30,
            )
        )

    threads = [threading.Thread(target=take, args=(f"o{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1
    got = journal.get_execution(e.exec_id)
    assert got is not None and got.status == "running" and got.runs == 2


def test_finish_releases_the_lease_and_records_the_result(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    result = artifact(e.exec_id, "result", producer="result")
    assert journal.finish(e.exec_id, owner="me", status="completed", now=5.0, result=result)
    got = journal.get_execution(e.exec_id)
    assert got is not None
    assert (got.status, got.owner, got.ended_at, got.result_artifact) == (
        "completed",
        None,
        5.0,
        result.artifact_id,
    )


def test_cancel_request_reaches_the_heartbeat(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    assert journal.heartbeat(e.exec_id, owner="me", now=1, lease_until=99) is False
    journal.request_cancel(e.exec_id, now=2)
    assert journal.heartbeat(e.exec_id, owner="me", now=3, lease_until=99) is True
    idle = execution(owner=None, status="waiting")
    journal.create_execution(idle, [])
    assert journal.cancel_idle(idle.exec_id, expected_owner=None, now=4)
    got = journal.get_execution(idle.exec_id)
    assert got is not None and got.status == "cancelled"
    # A cancelled execution cannot be leased again.
    assert not journal.take_lease(
        idle.exec_id, owner="x", expected_owner=None, statuses=("cancelled",), now=5, lease_until=9
    )


def test_artifact_versions_and_lookup(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    v1, v2 = artifact(e.exec_id, "notes", 1, "save"), artifact(e.exec_id, "notes", 2, "save")
    journal.put_artifact(v1)
    journal.put_artifact(v2)
    found = journal.find_artifact(e.exec_id, "notes")
    assert found is not None and found.version == 2
    got = journal.get_artifact(v1.artifact_id)
    assert got is not None and got.inline == v1.inline
    assert [a.version for a in journal.list_artifacts(e.exec_id)] == [1, 2]
    assert journal.list_artifacts(e.exec_id)[0].inline is None  # listing does not load bytes


def test_waits_are_answered_exactly_once(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    wait = WaitRecord(
        exec_id=e.exec_id,
        key="approve",
        name="approve",
        seq=2,
        question="ok?",
        schema={"type": "bool"},
        created_at=1.0,
        default=False,
        has_default=True,
    )
    assert journal.create_wait(wait, owner="me")
    assert not journal.create_wait(wait, owner="me")  # same key twice: ignored
    journal.finish(e.exec_id, owner="me", status="waiting", now=2.0)
    assert [w.key for w in journal.pending_waits()] == ["approve"]
    answer = artifact(e.exec_id, "approve", producer="wait", data=b"true")
    assert journal.answer_wait(e.exec_id, "approve", answer, now=3.0)
    again = artifact(e.exec_id, "approve", producer="wait", data=b"false")
    assert not journal.answer_wait(e.exec_id, "approve", again, now=4.0)
    assert journal.get_artifact(again.artifact_id) is None
    [stored] = journal.waits(e.exec_id)
    assert stored.status == "answered" and stored.value_artifact == answer.artifact_id
    assert stored.default is False and stored.has_default
    assert journal.pending_waits() == []


def test_replay_copies_calls_and_waits_before_the_replay_point(journal: Journal) -> None:
    src = execution(owner=None, status="queued")
    journal.create_execution(src, [])
    # (Claimed while queued: a server never lets a run claim a completed execution.)
    journal.take_lease(
        src.exec_id, owner="me", expected_owner=None, statuses=("queued",), now=1, lease_until=99
    )
    outs = []
    for i, key in enumerate(["a", "b", "c"], start=1):
        out = artifact(src.exec_id, key, seq=i)
        outs.append(out)
        journal.commit_call(call(src.exec_id, key, i, out), out, [], owner="me")
    dst = execution()
    journal.create_execution(dst, [])
    assert journal.copy_calls(src.exec_id, dst.exec_id, before_seq=3) == 2
    copied = journal.calls(dst.exec_id)
    assert [c.key for c in copied] == ["a", "b"]
    assert all(c.reused_from == src.exec_id for c in copied)
    assert copied[0].output is not None and copied[0].output.artifact_id == outs[0].artifact_id
    assert copied[0].output.exec_id == src.exec_id
    # A replay's artifacts are the ones it produced; reused outputs belong to the source.
    assert journal.list_artifacts(dst.exec_id) == []


def test_replay_copies_the_events_of_the_calls_it_reuses(journal: Journal) -> None:
    src = execution(owner=None, status="queued")
    journal.create_execution(src, [])
    journal.take_lease(
        src.exec_id, owner="me", expected_owner=None, statuses=("queued",), now=1, lease_until=99
    )
    for i, key in enumerate(["a", "b", "c"], start=1):
        out = artifact(src.exec_id, key, seq=i)
        journal.commit_call(call(src.exec_id, key, i, out), out, [], owner="me")
    feed = [
        EventRecord(src.exec_id, 0, 1, 10.0, "run_started", "f", None, {"run": 1}),
        EventRecord(src.exec_id, 0, 1, 11.0, "event", "found", "a", {"n": 1}),
        EventRecord(src.exec_id, 0, 1, 12.0, "output", "stdout", "a", {"text": "hi"}),
        EventRecord(src.exec_id, 0, 1, 13.0, "event", "found", "b", {"n": 2}),
        EventRecord(src.exec_id, 0, 1, 14.0, "event", "plan", None, {"n": 3}),
        EventRecord(src.exec_id, 0, 1, 15.0, "event", "found", "c", {"n": 4}),
        EventRecord(src.exec_id, 0, 2, 16.0, "event", "found", "a", {"n": 5}),
    ]
    assert journal.append_events(src.exec_id, feed, owner="me")
    dst = execution()
    journal.create_execution(dst, [])
    # a and b are reused, b's output overridden: only a's events (each of them) come along.
    journal.copy_calls(src.exec_id, dst.exec_id, before_seq=3, overridden=["b"])
    copied = journal.events(dst.exec_id)
    assert [(e.seq, e.run, e.ts, e.kind, e.call_key, e.data) for e in copied] == [
        (1, 0, 11.0, "event", "a", {"n": 1}),
        (2, 0, 16.0, "event", "a", {"n": 5}),
    ]
    assert all(e.reused for e in copied)


def test_pending_waits_of_finished_executions_are_not_listed(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    wait = WaitRecord(
        exec_id=e.exec_id,
        key="w",
        name="w",
        seq=1,
        question=None,
        schema={"type": "any"},
        created_at=1.0,
    )
    journal.create_wait(wait, owner="me")
    journal.finish(e.exec_id, owner="me", status="cancelled", now=2.0)
    assert journal.pending_waits() == []


def test_metadata_merges(journal: Journal) -> None:
    e = execution(metadata={"a": 1})
    journal.create_execution(e, [])
    journal.set_metadata(e.exec_id, {"b": 2})
    got = journal.get_execution(e.exec_id)
    assert got is not None and got.metadata == {"a": 1, "b": 2}
