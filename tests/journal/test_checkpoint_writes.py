"""The write each checkpoint makes (`commit_call` without logs: one statement, one round
trip; on PostgreSQL a statement prepared once per connection, values sent as text).

Values come back exactly as they went in (the retry check compares end times), calls
from many threads all land, and the connection can be lost, interrupted mid-write or
lose its prepared statement without losing or doubling a call.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from kitaru.journal import open_journal
from kitaru.journal._sql import SqlJournal
from tests.journal.conftest import fresh_postgres_url
from tests.journal.test_conformance import artifact, call, execution
from tests.journal.test_journal_retries import _cut


def test_a_call_is_stored_exactly_as_it_was_made(sql_journal: SqlJournal) -> None:
    from kitaru.journal import _settled

    e = execution("f", owner="me")
    sql_journal.create_execution(e, [])
    out = artifact(e.exec_id, "étape ✓", seq=7, data=bytes(range(256)))
    c = call(e.exec_id, "étape ✓", 7, out)
    c.started_at, c.ended_at = time.time(), time.time() + 1 / 3
    c.attempts, c.pos, c.branch = 2**31 - 1, 0, "2.1"
    c.error, c.metadata = "KeyError: 'ü' \\x00 %s ? $1", {"tokens": 3, "q": "?"}
    assert sql_journal.commit_call(c, out, [], owner="me")
    [stored] = sql_journal.calls(e.exec_id)
    assert (stored.key, stored.started_at, stored.ended_at, stored.attempts) == (
        c.key, c.started_at, c.ended_at, c.attempts,
    )  # fmt: skip
    assert (stored.pos, stored.branch, stored.error, stored.metadata) == (
        0, "2.1", c.error, c.metadata,
    )  # fmt: skip
    assert stored.output is not None and stored.output.inline == bytes(range(256))
    # What a retry after a lost answer compares: it recognises the call it made.
    assert _settled.commit_call(sql_journal, c, out, [], owner="me") is True


def test_calls_from_many_threads_all_land_and_a_taken_over_owner_is_refused(
    sql_journal: SqlJournal,
) -> None:
    e = execution("f", owner="me")
    sql_journal.create_execution(e, [])
    answers: list[bool] = []

    def branch(b: int) -> None:
        for i in range(25):
            seq = b * 100 + i
            out = artifact(e.exec_id, f"step#{seq}", seq=seq)
            answers.append(sql_journal.commit_call(call(e.exec_id, f"step#{seq}", seq, out),
                                                    out, [], owner="me"))  # fmt: skip

    threads = [threading.Thread(target=branch, args=(b,)) for b in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [True] * 200 and len(sql_journal.calls(e.exec_id)) == 200
    now = time.time()
    assert sql_journal.take_lease(e.exec_id, owner="new", expected_owner="me",
                                  statuses=("running",), now=now, lease_until=now + 30)  # fmt: skip
    out = artifact(e.exec_id, "late", seq=999)
    assert not sql_journal.commit_call(call(e.exec_id, "late", 999, out), out, [], owner="me")
    assert len(sql_journal.calls(e.exec_id)) == 200


@pytest.fixture
def pg_journal() -> Iterator[SqlJournal]:
    journal = open_journal(fresh_postgres_url())
    assert isinstance(journal, SqlJournal)
    yield journal
    journal.close()


@pytest.mark.services
def test_a_lost_connection_is_ridden_out_and_the_call_made_once(pg_journal: SqlJournal) -> None:
    e = execution("f", owner="me")
    pg_journal.create_execution(e, [])
    out = artifact(e.exec_id, "step", seq=1)
    c = call(e.exec_id, "step", 1, out)
    assert pg_journal.commit_call(c, out, [], owner="me")
    _cut(pg_journal)
    # The answer was lost: the same call sent again is recognised, not stored twice.
    assert pg_journal.commit_call(c, out, [], owner="me")
    _cut(pg_journal)
    # A new call after the cut lands on the new connection (prepared there again).
    out2 = artifact(e.exec_id, "step#2", seq=2)
    assert pg_journal.commit_call(call(e.exec_id, "step#2", 2, out2), out2, [], owner="me")
    assert [x.key for x in pg_journal.calls(e.exec_id)] == ["step", "step#2"]


@pytest.mark.services
def test_a_statement_the_server_forgot_is_prepared_again(pg_journal: SqlJournal) -> None:
    e = execution("f", owner="me")
    pg_journal.create_execution(e, [])
    for seq in (1, 2, 3):
        if seq == 2:
            pg_journal._conn.execute("DEALLOCATE ALL")  # as a pooler or an admin may
        out = artifact(e.exec_id, f"step#{seq}", seq=seq)
        assert pg_journal.commit_call(call(e.exec_id, f"step#{seq}", seq, out), out, [],
                                      owner="me")  # fmt: skip
    assert [x.seq for x in pg_journal.calls(e.exec_id)] == [1, 2, 3]


@pytest.mark.services
def test_a_value_postgres_cannot_store_is_refused_and_the_journal_goes_on(
    pg_journal: SqlJournal,
) -> None:
    import psycopg

    e = execution("f", owner="me")
    pg_journal.create_execution(e, [])
    bad = call(e.exec_id, "step", 1, None, status="failed")
    bad.error = "a text with a NUL \x00 in it"
    with pytest.raises(psycopg.DataError, match="NUL"):
        pg_journal.commit_call(bad, None, [], owner="me")
    out = artifact(e.exec_id, "step", seq=1)
    assert pg_journal.commit_call(call(e.exec_id, "step", 1, out), out, [], owner="me")
    assert [x.status for x in pg_journal.calls(e.exec_id)] == ["completed"]


@pytest.mark.services
def test_ctrl_c_during_a_write_leaves_the_journal_usable(pg_journal: SqlJournal) -> None:
    """The write waits on a row another transaction holds; Ctrl-C interrupts the wait.
    The next write goes through on a new connection; the interrupted one is either
    stored or not, never half."""
    import psycopg

    e = execution("f", owner="me")
    pg_journal.create_execution(e, [])
    out = artifact(e.exec_id, "step", seq=1)
    c = call(e.exec_id, "step", 1, out)
    with psycopg.connect(pg_journal._conn.info.dsn, autocommit=False) as other:
        # The same row, not committed: the journal's insert waits for this transaction.
        other.execute(
            "INSERT INTO calls (exec_id, seq, key, name, func, kind, status, started_at, "
            "ended_at, run, attempts) VALUES (%s, 1, 'step', 'step', 'm:f', 'checkpoint', "
            "'failed', 0, 0, 1, 1)",
            (e.exec_id,),
        )
        main = threading.main_thread().ident
        assert main is not None
        # Ctrl-C as a terminal sends it, whatever this process inherited: a shell starts
        # a background job with SIGINT ignored, and the write would then wait forever.
        before = signal.signal(signal.SIGINT, signal.default_int_handler)
        timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))
        try:
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                pg_journal.commit_call(c, out, [], owner="me")
        finally:
            timer.join()
            signal.signal(signal.SIGINT, before)
            other.rollback()
    assert pg_journal.commit_call(c, out, [], owner="me")
    assert [x.status for x in pg_journal.calls(e.exec_id)] == ["completed"]
