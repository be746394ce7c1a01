"""A journal written by the first schema opens with today's code, resumes, answers, replays."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from kitaru import KitaruClient
from kitaru.journal import open_journal
from kitaru.journal._migrations import LATEST, MIGRATIONS, statements
from tests.fixtures import v1_flows
from tests.journal.conftest import fresh_postgres_url

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "journal_v1.db"
TABLES = ["executions", "artifacts", "calls", "waits", "logs"]


def _copy_into_postgres(url: str) -> None:
    """Rebuild the schema-1 fixture in PostgreSQL: schema 1 DDL, then the stored rows."""
    import psycopg

    from kitaru.journal._postgres import PostgresJournal

    src = sqlite3.connect(FIXTURE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kitaru_schema (version INTEGER NOT NULL)")
        for stmt in statements(MIGRATIONS[0][1], PostgresJournal.types):
            conn.execute(stmt)
        conn.execute("INSERT INTO kitaru_schema (version) VALUES (1)")
        for table in TABLES:
            cur = src.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description]
            marks = ", ".join(["%s"] * len(cols))
            for row in cur.fetchall():
                conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", row)


@pytest.fixture(params=["sqlite", "postgres"])
def v1_journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "journal.db"
        shutil.copy(FIXTURE, path)
        return f"sqlite:///{path}"
    url = fresh_postgres_url()
    _copy_into_postgres(url)
    return url


def test_first_schema_journal_migrates_and_its_executions_continue(v1_journal_url: str) -> None:
    assert v1_flows.summarize.name == "summarize"  # the fixture's flows are importable
    journal = open_journal(v1_journal_url)
    assert journal.schema_version() == LATEST  # type: ignore[attr-defined]
    client = KitaruClient(v1_journal_url)
    executions = {e.flow + ":" + e.status: e for e in client.executions.list()}
    assert set(executions) == {"summarize:completed", "approve:waiting", "summarize:crashed"}

    crashed = executions["summarize:crashed"]
    resumed = client.executions.resume(crashed.exec_id)
    assert resumed.status == "completed"
    assert resumed.result == {"text": "facts about bats", "length": 16}
    assert [c["origin"] for c in resumed.checkpoints] == ["journal", "ran"]

    waiting = executions["approve:waiting"]
    answered = client.executions.input(waiting.exec_id, "ok", True)
    assert answered.status == "completed" and answered.result == "facts about kites"

    done = executions["summarize:completed"]
    replayed = client.executions.replay(done.exec_id, from_="count")
    assert replayed.status == "completed"
    assert replayed.result == {"text": "facts about owls", "length": 16}
    assert [c["origin"] for c in replayed.checkpoints] == ["reused", "ran"]
