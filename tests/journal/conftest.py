"""The journal conformance suite runs against every backend: SQLite always, PostgreSQL
when the test services are up (scripts/test.sh starts it; run tests through `make test`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitaru.journal import Journal, open_journal
from kitaru.journal._sql import SqlJournal


def _postgres_url() -> str:
    url = os.environ.get("KITARU_TEST_POSTGRES_URL")
    if not url:
        pytest.fail(
            "KITARU_TEST_POSTGRES_URL is not set: run the tests with `make test` (or start "
            "scripts/services/postgres.sh up and source .test-services/postgres.env)"
        )
    return url


def fresh_postgres_url() -> str:
    """A new, empty database on the test server."""
    import psycopg

    base = _postgres_url()
    name = "kj_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"


@pytest.fixture(params=["sqlite", "postgres", "http"])
def journal_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'journal.db'}"
        return
    if request.param == "postgres":
        yield fresh_postgres_url()
        return
    # The HTTP journal: a real server process over its own PostgreSQL database.
    from kitaru import remote
    from kitaru.server import _tokens
    from tests.server_process import ServerProcess

    url = fresh_postgres_url()
    # The suite exercises every journal operation, an admin's (tags, stacks) included.
    token, _record = _tokens.create(open_journal(url), scope="admin")
    server = ServerProcess(url, tmp_path / "server", args=("--sweep-interval", "0"))
    try:
        monkeypatch.setenv("KITARU_API_TOKEN", token)
        yield server.url
    finally:
        remote.reset_for_tests()
        server.stop()


@pytest.fixture
def journal(journal_url: str) -> Iterator[Journal]:
    yield open_journal(journal_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def sql_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlJournal]:
    """A fresh journal over SQL (SQLite, and PostgreSQL when the services run), for
    tests that reach under the journal's interface."""
    url = (
        f"sqlite:///{tmp_path / 'journal.db'}"
        if request.param == "sqlite"
        else fresh_postgres_url()
    )
    journal = open_journal(url)
    assert isinstance(journal, SqlJournal)
    yield journal
    journal.close()
