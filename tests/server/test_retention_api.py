"""Retention through a server: `kitaru gc` and `kitaru executions delete` with
KITARU_SERVER_URL run on the server for an admin token and are refused for read, write
and run tokens before anything is deleted; `--retention` deletes on its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitaru.artifacts._local import LocalArtifactStore
from kitaru.journal import open_journal
from kitaru.server import _tokens
from tests import retention_world as world
from tests.journal.conftest import fresh_postgres_url
from tests.server.conftest import Client
from tests.server_process import ServerProcess

pytestmark = pytest.mark.services


def _server(tmp_path: Path, *args: str) -> Iterator[ServerProcess]:
    proc = ServerProcess(fresh_postgres_url(), tmp_path / "server", args=args)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    yield from _server(tmp_path, "--sweep-interval", "0")


def _fill(server: ServerProcess, n: int) -> tuple[object, LocalArtifactStore, world.World]:
    journal = open_journal(server.journal_url)
    store = LocalArtifactStore(server.store)
    store.check()
    return journal, store, world.build(journal, store, n)


def test_only_an_admin_token_deletes_through_a_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    journal, store, made = _fill(server, 300)
    victim = sorted(made.old)[0]
    before = sorted(store.list())
    run_token = _tokens.mint_run_token(journal, victim)
    for scope, token in [
        ("read", server.token("read")),
        ("write", server.token("write")),
        ("run", run_token),
    ]:
        attacker = Client(server, token, tmp_path / scope)
        for args in (
            ("gc", "--older-than", "0s", "--with-lineage"),
            ("executions", "delete", victim, "--force", "--with-lineage"),
        ):
            answer = attacker.cli(*args, cwd=tmp_path)
            assert answer.returncode != 0, (scope, args, answer.stdout)
            assert "refused" in answer.stderr, (scope, answer.stderr)
    assert world.check(journal, store) == made.old | made.keep  # nothing deleted
    assert sorted(store.list()) == before

    admin = Client(server, server.token("admin"), tmp_path / "admin")
    dry = admin.cli_json("gc", "--older-than", "30d", "--dry-run")
    assert set(dry["deleted"]) == made.old
    one = admin.cli_json("executions", "delete", victim)
    assert one["deleted"] == [victim]
    rest = admin.cli_json("gc", "--older-than", "30d")
    assert set(rest["deleted"]) == made.old - {victim}
    assert world.check(journal, store) == made.keep
    unknown = admin.cli("executions", "delete", victim, cwd=tmp_path)
    assert unknown.returncode == 2 and f"no execution {victim}" in unknown.stderr


def test_a_server_with_retention_deletes_old_executions_by_itself(tmp_path: Path) -> None:
    for server in _server(tmp_path, "--retention", "30d", "--retention-interval", "0.5"):
        journal, store, made = _fill(server, 300)
        deadline = time.monotonic() + 60
        while True:
            try:  # the rows go first, then the bytes: wait for both
                assert world.check(journal, store) == made.keep
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(1.5)  # passes that find nothing change nothing
        assert world.check(journal, store) == made.keep
