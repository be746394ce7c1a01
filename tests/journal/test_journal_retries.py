"""A write whose acknowledgement was lost is recognised when it is retried.

On PostgreSQL the lost answer is made real: the write commits, then the server ends the
session (`pg_terminate_backend`), and the same write is made again, as the retry after
a cut connection makes it: the journal reconnects, finds its own write, and answers
what the write answered, without writing twice. On SQLite (no session to cut) each
check is run on its own after the write.
"""

from __future__ import annotations

import time

import pytest

from kitaru._errors import InvalidConfigurationError
from kitaru.journal import LogRecord, open_journal
from kitaru.journal._retry import UNSETTLED, retry_seconds
from kitaru.journal._sql import SqlJournal
from tests.journal.conftest import fresh_postgres_url
from tests.journal.test_conformance import artifact, call, execution


@pytest.fixture
def pg_journal() -> SqlJournal:
    journal = open_journal(fresh_postgres_url())
    assert isinstance(journal, SqlJournal)
    return journal


def _cut(journal: SqlJournal) -> None:
    """Lose the session the journal holds, as a restart or a proxy reset does."""
    import psycopg

    pid = journal._conn.info.backend_pid
    with psycopg.connect(fresh_postgres_url(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _logs(exec_id: str) -> list[LogRecord]:
    return [LogRecord(exec_id, "step", 1, 3.0, "stdout", "hello")]


@pytest.mark.services
def test_a_commit_made_again_after_a_lost_answer_is_recognised(pg_journal: SqlJournal) -> None:
    sql_journal = pg_journal
    e = execution("f", owner="me")
    sql_journal.create_execution(e, [])
    out = artifact(e.exec_id, "step", seq=1)
    c = call(e.exec_id, "step", 1, out)
    assert sql_journal.commit_call(c, out, _logs(e.exec_id), owner="me")
    _cut(sql_journal)
    # The retry: same call, same logs. Nothing is stored twice.
    assert sql_journal.commit_call(c, out, _logs(e.exec_id), owner="me")
    assert [g.text for g in sql_journal.logs(e.exec_id)] == ["hello"]
    assert [x.key for x in sql_journal.calls(e.exec_id)] == ["step"]


@pytest.mark.services
def test_finish_and_lease_made_again_answer_as_the_first_time(pg_journal: SqlJournal) -> None:
    sql_journal = pg_journal
    e = execution("f", owner=None, status="failed")
    sql_journal.create_execution(e, [])
    now = time.time()
    assert sql_journal.take_lease(
        e.exec_id, owner="me", expected_owner=None, statuses=("failed",), now=now,
        lease_until=now + 30,
    )  # fmt: skip
    _cut(sql_journal)
    # Without the check the compare-and-swap would now refuse: the owner is "me".
    assert sql_journal.take_lease(
        e.exec_id, owner="me", expected_owner=None, statuses=("failed",), now=now,
        lease_until=now + 30,
    )  # fmt: skip
    done = time.time()
    assert sql_journal.finish(e.exec_id, owner="me", status="completed", now=done)
    _cut(sql_journal)
    assert sql_journal.finish(e.exec_id, owner="me", status="completed", now=done)
    # A finish that did not happen is still refused.
    assert not sql_journal.finish(e.exec_id, owner="me", status="failed", now=time.time())


def test_each_check_tells_done_from_not_done(sql_journal: SqlJournal) -> None:
    from kitaru.journal import _settled

    e = execution("f", owner="me")
    out = artifact(e.exec_id, "step", seq=1)
    c = call(e.exec_id, "step", 1, out)
    assert _settled.create_execution(sql_journal, e, []) is UNSETTLED
    assert _settled.commit_call(sql_journal, c, out, [], owner="me") is UNSETTLED
    sql_journal.create_execution(e, [])
    assert _settled.create_execution(sql_journal, e, []) == e.exec_id
    sql_journal.commit_call(c, out, [], owner="me")
    assert _settled.commit_call(sql_journal, c, out, [], owner="me") is True
    other = call(e.exec_id, "step", 1, out, status="failed")
    assert _settled.commit_call(sql_journal, other, None, [], owner="me") is UNSETTLED
    loose = artifact(e.exec_id, "saved", producer="save")
    assert _settled.put_artifact(sql_journal, loose) is UNSETTLED
    sql_journal.put_artifact(loose)
    assert _settled.put_artifact(sql_journal, loose) is None
    logs = _logs(e.exec_id)
    assert _settled.append_logs(sql_journal, logs) is UNSETTLED
    sql_journal.append_logs(logs)
    assert _settled.append_logs(sql_journal, logs) is None


def test_the_retry_window_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KITARU_JOURNAL_RETRY_SECONDS", raising=False)
    assert retry_seconds() == 60
    monkeypatch.setenv("KITARU_JOURNAL_RETRY_SECONDS", "5")
    assert retry_seconds() == 5
    monkeypatch.setenv("KITARU_JOURNAL_RETRY_SECONDS", "soon")
    with pytest.raises(InvalidConfigurationError, match="KITARU_JOURNAL_RETRY_SECONDS"):
        retry_seconds()


@pytest.mark.services
def test_a_claim_made_again_after_a_lost_answer_gets_the_same_execution(
    pg_journal: SqlJournal,
) -> None:
    """A worker's claim commits and its answer is lost: the retry answers with the
    execution the claim took, rather than claiming the next one and leaving the first
    claimed by nobody."""
    from tests.journal.test_queues_journal import owner, queued

    first, second = queued("lost-claim"), queued("lost-claim")
    first.updated_at -= 10  # the longer waiting: claimed first
    for e in (first, second):
        pg_journal.create_execution(e, [])
    token, now = owner(), time.time()
    claim = dict(queue="lost-claim", flows=["agent"], owner=token, worker="w1", now=now,
                 lease_until=now + 30)  # fmt: skip
    taken = pg_journal.claim(**claim)  # type: ignore[arg-type]
    assert taken is not None and taken.exec_id == first.exec_id
    _cut(pg_journal)
    again = pg_journal.claim(**claim)  # type: ignore[arg-type]
    assert again is not None and again.exec_id == first.exec_id and again.owner == token
    left = pg_journal.get_execution(second.exec_id)
    assert left is not None and (left.status, left.owner) == ("queued", None)


@pytest.mark.services
def test_a_replay_copy_made_again_after_a_lost_answer_is_recognised(
    pg_journal: SqlJournal,
) -> None:
    """A replay copies its source's calls and answers; the copy commits and its answer is
    lost: the retry answers with what was copied, instead of a conflict error."""
    source = execution("f", owner="src")
    pg_journal.create_execution(source, [])
    for seq in (1, 2, 3):
        out = artifact(source.exec_id, f"step#{seq}", seq=seq)
        assert pg_journal.commit_call(
            call(source.exec_id, f"step#{seq}", seq, out), out, [], owner="src"
        )
    replay = execution("f", owner="me", replayed_from=source.exec_id)
    pg_journal.create_execution(replay, [])
    assert pg_journal.copy_calls(source.exec_id, replay.exec_id, before_seq=3) == 2
    _cut(pg_journal)
    assert pg_journal.copy_calls(source.exec_id, replay.exec_id, before_seq=3) == 2
    assert [c.key for c in pg_journal.calls(replay.exec_id)] == ["step#1", "step#2"]


@pytest.mark.services
@pytest.mark.parametrize("journal_url", ["http"], indirect=True)
def test_through_a_server_a_replay_copy_and_a_claim_sent_again_answer_as_the_first(
    journal_url: str,
) -> None:
    """Each first send reached the server and its answer was lost (sent here by hand,
    the answer dropped); the client's own send, as its retry makes it, answers what the
    first would have: the copies made, the execution claimed. No conflict, no second
    claim."""
    from tests.journal.test_queues_journal import owner, queued

    journal = open_journal(journal_url)
    send = journal._post  # type: ignore[attr-defined]  # the server's journal client
    source = execution("f", owner="src")
    journal.create_execution(source, [])
    for seq in (1, 2, 3):
        out = artifact(source.exec_id, f"step#{seq}", seq=seq)
        assert journal.commit_call(
            call(source.exec_id, f"step#{seq}", seq, out), out, [], owner="src"
        )
    replay = execution("f", owner="me", replayed_from=source.exec_id)
    journal.create_execution(replay, [])
    copy = {"source": source.exec_id, "before_seq": 3}
    send(f"/executions/{replay.exec_id}/copy-calls", copy)
    assert journal.copy_calls(source.exec_id, replay.exec_id, before_seq=3) == 2
    assert [c.key for c in journal.calls(replay.exec_id)] == ["step#1", "step#2"]

    first, second = queued("lost-claim-http"), queued("lost-claim-http")
    first.updated_at -= 10
    for e in (first, second):
        journal.create_execution(e, [])
    token, now = owner(), time.time()
    body = {"queue": "lost-claim-http", "flows": ["agent"], "owner": token, "worker": "w1",
            "lease_seconds": 30}  # fmt: skip
    send("/runner/claim", body)
    again = journal.claim(queue="lost-claim-http", flows=["agent"], owner=token, worker="w1",
                          now=now, lease_until=now + 30)  # fmt: skip
    assert again is not None and again.exec_id == first.exec_id
    left = journal.get_execution(second.exec_id)
    assert left is not None and (left.status, left.owner) == ("queued", None)
