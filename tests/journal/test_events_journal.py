"""The live feed on every backend: numbered by the journal in the order it stores
batches, read on after any entry, written only by the lease's owner."""

from __future__ import annotations

import time

from kitaru.journal import EventRecord, Journal
from tests.journal.test_conformance import artifact, call, execution


def entry(exec_id: str, name: str, data: object = None, kind: str = "event") -> EventRecord:
    # seq 0: the journal gives the number.
    return EventRecord(exec_id, 0, 1, time.time(), kind, name, None, data)


def test_entries_are_numbered_in_order_and_read_on_after_any_of_them(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    assert journal.append_events(e.exec_id, [entry(e.exec_id, "a", {"n": 1})], owner="me")
    batch = [entry(e.exec_id, f"b{i}", [i, "é", None]) for i in range(5)]
    assert journal.append_events(e.exec_id, batch, owner="me")

    stored = journal.events(e.exec_id)
    assert [(x.seq, x.name) for x in stored] == [(1, "a")] + [(i + 2, f"b{i}") for i in range(5)]
    assert stored[0].data == {"n": 1} and stored[3].data == [2, "é", None]
    assert [x.seq for x in journal.events(e.exec_id, after=3)] == [4, 5, 6]
    assert [x.seq for x in journal.events(e.exec_id, after=1, limit=2)] == [2, 3]
    assert journal.events(e.exec_id, after=6) == []


def test_only_the_lease_owner_appends(journal: Journal) -> None:
    e = execution()
    journal.create_execution(e, [])
    assert not journal.append_events(e.exec_id, [entry(e.exec_id, "x")], owner="someone-else")
    assert journal.events(e.exec_id) == []


def test_a_run_ends_with_its_last_entries_and_only_by_its_owner(journal: Journal) -> None:
    """`finish(events=...)`: a run's last entries go with its status, numbered after the
    feed's last; a finish by a process that lost the lease stores neither."""
    e = execution()
    journal.create_execution(e, [])
    journal.append_events(e.exec_id, [entry(e.exec_id, "early")], owner="me")
    end = [entry(e.exec_id, "progress"), entry(e.exec_id, "completed", kind="run_ended")]

    assert not journal.finish(
        e.exec_id, owner="someone-else", status="completed", now=time.time(), events=end
    )
    assert [x.name for x in journal.events(e.exec_id)] == ["early"]

    assert journal.finish(e.exec_id, owner="me", status="completed", now=time.time(), events=end)
    stored = journal.events(e.exec_id)
    assert [(x.seq, x.name, x.kind) for x in stored] == [
        (1, "early", "event"),
        (2, "progress", "event"),
        (3, "completed", "run_ended"),
    ]
    done = journal.get_execution(e.exec_id)
    assert done is not None and done.status == "completed" and done.owner is None


def test_feeds_of_executions_are_apart(journal: Journal) -> None:
    a, b = execution(), execution()
    journal.create_execution(a, [])
    journal.create_execution(b, [])
    journal.append_events(a.exec_id, [entry(a.exec_id, "for-a")], owner="me")
    journal.append_events(b.exec_id, [entry(b.exec_id, "for-b")], owner="me")
    assert [(x.seq, x.name) for x in journal.events(b.exec_id)] == [(1, "for-b")]


def test_fast_calls_are_read_with_their_details_and_only_from_their_own_execution(
    journal: Journal,
) -> None:
    # A run stores fast calls by number (kitaru/_events.py); a reader gets each call's
    # details. An entry that names numbers of no call of this run, or that are not
    # numbers (a run token can write any entry), lists nothing: never another
    # execution's calls.
    a, b = execution(), execution()
    journal.create_execution(a, [])
    journal.create_execution(b, [])
    for i, key in enumerate(["fetch", "fetch#2"], start=1):
        out = artifact(a.exec_id, key)
        assert journal.commit_call(call(a.exec_id, key, i, out), out, [], owner="me")
    out = artifact(b.exec_id, "secret")
    assert journal.commit_call(call(b.exec_id, "secret", 7, out), out, [], owner="me")
    fast = entry(a.exec_id, "calls", {"seqs": [1, 2]}, kind="calls_ended")
    forged = entry(a.exec_id, "calls", {"seqs": [7, "1", None, 2.0, 99]}, kind="calls_ended")
    assert journal.append_events(a.exec_id, [fast, forged], owner="me")

    listed, nothing = journal.events(a.exec_id)
    assert [c["key"] for c in listed.data["calls"]] == ["fetch", "fetch#2"]
    first = listed.data["calls"][0]
    assert first["status"] == "completed" and first["kind"] == "checkpoint"
    assert first["attempts"] == 1 and first["duration_s"] >= 0
    assert nothing.data == {"calls": []}


def test_entries_sent_again_after_a_lost_answer_are_stored_once(journal: Journal) -> None:
    """A batch is stored and its answer lost; the writer sends it again, with the entries
    added since, marked `again`: each entry is in the feed once, in order."""
    e = execution()
    journal.create_execution(e, [])
    first = [entry(e.exec_id, f"e{i}", {"i": i}) for i in range(3)]
    assert journal.append_events(e.exec_id, first, owner="me")
    later = [entry(e.exec_id, "e3", {"i": 3}), entry(e.exec_id, "e4", {"i": 4})]
    assert journal.append_events(e.exec_id, first + later, owner="me", again=True)
    stored = journal.events(e.exec_id)
    assert [(x.seq, x.name) for x in stored] == [(i + 1, f"e{i}") for i in range(5)]
    # Sent again with nothing new: nothing is added.
    assert journal.append_events(e.exec_id, later, owner="me", again=True)
    assert len(journal.events(e.exec_id)) == 5
    # Two pieces of one long print share their time, stream and call: the second, not
    # stored before, is not taken for the first.
    piece = entry(e.exec_id, "stdout", {"text": "a" * 10}, kind="output")
    assert journal.append_events(e.exec_id, [piece], owner="me")
    rest = EventRecord(e.exec_id, 0, 1, piece.ts, "output", "stdout", None, {"text": "b"})
    assert journal.append_events(e.exec_id, [piece, rest], owner="me", again=True)
    assert [x.data for x in journal.events(e.exec_id, after=5)] == [piece.data, rest.data]
