"""Workers run as real processes on SQLite (one machine) and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kitaru.journal import Journal, open_journal
from tests.journal.conftest import fresh_postgres_url
from tests.workers.support import Workers, env_for, write_flows


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return fresh_postgres_url()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    write_flows(folder)
    return folder


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.txt"


@pytest.fixture
def worker_env(journal_url: str, tmp_path: Path, ledger_path: Path) -> dict[str, str]:
    return env_for(journal_url, tmp_path / "home", ledger_path)


@pytest.fixture
def workers(project: Path, worker_env: dict[str, str]) -> Iterator[Workers]:
    ws = Workers(project, worker_env)
    try:
        yield ws
    finally:
        ws.stop()


@pytest.fixture
def journal(journal_url: str) -> Journal:
    return open_journal(journal_url)
