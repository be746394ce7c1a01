"""Journals written by earlier schemas open with today's code, resume, answer and replay."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from kitaru import KitaruClient
from kitaru.journal import open_journal
from kitaru.journal._migrations import LATEST, MIGRATIONS, statements
from tests.fixtures import v1_flows, v4_flows
from tests.journal.conftest import fresh_postgres_url

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TABLES = ["executions", "artifacts", "calls", "waits", "logs"]


def _copy_into_postgres(fixture: Path, version: int, url: str) -> None:
    """Rebuild a fixture in PostgreSQL: the DDL up to its schema, then the stored rows."""
    import psycopg

    from kitaru.journal._postgres import PostgresJournal

    src = sqlite3.connect(fixture)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kitaru_schema (version INTEGER NOT NULL)")
        for number, sql in MIGRATIONS[:version]:
            for stmt in statements(sql, PostgresJournal.types):
                conn.execute(stmt)
        conn.execute("INSERT INTO kitaru_schema (version) VALUES (%s)", (version,))
        for table in TABLES:
            cur = src.execute(f"SELECT * FROM {table}")
            cols = [d[0] for d in cur.description]
            marks = ", ".join(["%s"] * len(cols))
            for row in cur.fetchall():
                conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", row)


def _journal_url(request: pytest.FixtureRequest, tmp_path: Path, version: int) -> str:
    fixture = FIXTURES / f"journal_v{version}.db"
    if request.param == "sqlite":
        path = tmp_path / "journal.db"
        shutil.copy(fixture, path)
        return f"sqlite:///{path}"
    url = fresh_postgres_url()
    _copy_into_postgres(fixture, version, url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def v1_journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _journal_url(request, tmp_path, 1)


@pytest.fixture(params=["sqlite", "postgres"])
def v4_journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _journal_url(request, tmp_path, 4)


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


def test_journal_from_before_branches_resumes_answers_and_replays_unchanged(
    v4_journal_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Executions recorded by 1.0.0a1, which keyed every call by arrival order (fan-outs
    included), keep their keys: they resume, take answers and replay as they did."""
    assert v4_flows.pipeline.name == "pipeline"
    client = KitaruClient(v4_journal_url)
    executions = {e.flow + ":" + e.status: e for e in client.executions.list()}
    assert set(executions) == {
        "pipeline:completed", "approve:waiting", "pipeline:crashed", "pipeline:failed",
    }  # fmt: skip
    done = executions["pipeline:completed"]
    expected = {"text": "facts about FACTS ABOUT OWLS +1 +2 +3", "scores": [4, 25, 37]}
    assert client.executions.get(done.exec_id).result == expected

    crashed = client.executions.resume(executions["pipeline:crashed"].exec_id)
    assert crashed.status == "completed", crashed.error
    assert [c["key"] for c in crashed.checkpoints] == [
        "fetch", "step", "step#2", "step#3", "final", "score", "score#2", "score#3",
    ]  # fmt: skip
    assert [c["origin"] for c in crashed.checkpoints][:3] == ["journal", "journal", "ran"]

    failed = client.executions.resume(executions["pipeline:failed"].exec_id)
    assert failed.status == "completed", failed.error
    assert failed.result == {
        "text": "facts about FACTS ABOUT MOTHS +1 +2 +3", "scores": [5, 26, 38],
    }  # fmt: skip
    assert [c["origin"] for c in failed.checkpoints][:4] == ["journal"] * 3 + ["ran"]

    waiting = executions["approve:waiting"]
    answered = client.executions.input(waiting.exec_id, "ok#2", True)
    assert answered.status == "completed" and answered.result == "facts about kites"

    replayed = client.executions.replay(done.exec_id, from_="final", overrides={"step#3": "x"})
    assert replayed.status == "completed", replayed.error
    assert replayed.result == {"text": "facts about X", "scores": [4, 1, 13]}
    origins = {c["key"]: c["origin"] for c in replayed.checkpoints}
    assert origins["fetch"] == "reused" and origins["step#3"] == "override"
    assert origins["final"] == "ran"
