"""How a container started for an execution reaches its journal (kitaru/stacks/_reporting.py),
case by case, with a real server on PostgreSQL for the server's cases; and the run tokens
the server mints, revoked when the next run's token is minted or by a sweep once the
execution has ended.

The server runs with its sweeper off: the sweeps here are `Sweeper.sweep()` calls, so a
token is revoked exactly when a test asks for it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from kitaru._errors import KitaruUsageError
from kitaru._ids import new_id
from kitaru.journal import ExecutionRecord, Journal, StackRecord, open_journal
from kitaru.journal._tokens import TokenRows
from kitaru.remote import HttpJournal
from kitaru.server import _tokens
from kitaru.server._sweeper import Sweeper
from kitaru.stacks._reporting import reporting
from kitaru.stacks._secrets import SecretRef
from tests.server.conftest import running_server
from tests.server_process import ServerProcess

STACK = StackRecord(name="box", orchestrator="docker", artifact_store="s3://b/runs", settings={})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_server(tmp_path_factory, "--sweep-interval", "0")


@pytest.fixture
def journal(server: ServerProcess) -> Journal:
    """The server's journal, opened directly as the server opens it (closed after each
    test by the kitaru_home fixture)."""
    return open_journal(server.journal_url)


def queued(journal: Journal, **metadata: object) -> ExecutionRecord:
    now = time.time()
    record = ExecutionRecord(
        exec_id=new_id("kx"),
        flow="agent",
        status="queued",
        created_at=now,
        updated_at=now,
        stack="box",
        orchestrator="docker",
        metadata={"image": "registry/agent@sha256:01", **metadata},
    )
    journal.create_execution(record, [])
    return record


def tokens(journal: Journal) -> TokenRows:
    assert isinstance(journal, TokenRows)
    return journal


def token_id(token: str) -> str:
    return token.removeprefix("kt_").partition("_")[0]


def test_a_stack_with_its_own_journal_keeps_it(journal: Journal) -> None:
    record = queued(journal, server_url="http://server:8080")
    plain = dataclasses.replace(STACK, journal="postgresql://jobs@db:5432/kitaru")
    route = reporting(journal, record, plain, {})
    assert route.environment == {"KITARU_JOURNAL_URL": "postgresql://jobs@db:5432/kitaru"}
    assert (route.secrets, route.server_url) == ({}, None)

    referenced = dataclasses.replace(STACK, journal="secret:kitaru-journal#url")
    route = reporting(journal, record, referenced, {})
    assert route.environment == {}
    assert route.secrets == {"KITARU_JOURNAL_URL": SecretRef("secret", "kitaru-journal", "url")}


def test_a_submitter_on_a_server_sends_the_container_to_it(
    server: ServerProcess, write_token: str, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_API_TOKEN", write_token)
    through_server = HttpJournal(server.url)
    record = queued(journal)
    before = len(tokens(journal).list_tokens())

    route = reporting(through_server, record, STACK, {})
    assert route.environment == {"KITARU_SERVER_URL": server.url}
    # The submitter's own token, read where it submits (as every env: reference is).
    assert route.secrets == {"KITARU_API_TOKEN": SecretRef("env", "KITARU_API_TOKEN")}
    assert route.server_url == server.url

    platform = SecretRef("secret", "kitaru-runner", "token")
    route = reporting(through_server, record, STACK, {"KITARU_API_TOKEN": platform})
    assert route.secrets == {"KITARU_API_TOKEN": platform}
    assert len(tokens(journal).list_tokens()) == before  # nothing minted for a client


def test_the_server_resubmitting_its_execution_mints_a_token_for_the_run(
    server: ServerProcess, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The URL the container reports to is the server's own (its --public-url), passed by
    # the server; a URL in the execution's metadata, which clients write, is never used.
    monkeypatch.setenv("KITARU_JOURNAL_URL", server.journal_url)
    record = queued(journal, server_url="http://attacker.example:8080")
    ignored = reporting(journal, record, STACK, {})
    assert ignored.environment == {"KITARU_JOURNAL_URL": server.journal_url}
    assert "attacker" not in repr(ignored)

    first = reporting(journal, record, STACK, {}, server.url)
    assert set(first.environment) == {"KITARU_SERVER_URL", "KITARU_API_TOKEN"}
    assert first.environment["KITARU_SERVER_URL"] == server.url
    assert (first.secrets, first.server_url) == ({}, server.url)
    one = first.environment["KITARU_API_TOKEN"]
    minted = tokens(journal).get_token(token_id(one))
    assert minted is not None
    assert (minted.name, minted.scope) == (f"run-{record.exec_id}", "run")
    assert minted.revoked_at is None

    # The next run's token replaces it: only the newest run can write.
    two = reporting(journal, record, STACK, {}, server.url).environment["KITARU_API_TOKEN"]
    assert _tokens.verify(tokens(journal), one) is None
    assert _tokens.verify(tokens(journal), two) is not None
    with server.http(two) as http:
        info = http.get("/api/v1/info").json()
    assert (info["scope"], info["execution"]) == ("run", record.exec_id)

    # A token the stack names is used as it is; nothing is minted.
    platform = SecretRef("secret", "kitaru-runner", "token")
    route = reporting(journal, record, STACK, {"KITARU_API_TOKEN": platform}, server.url)
    assert route.environment == {"KITARU_SERVER_URL": server.url}
    assert route.secrets == {"KITARU_API_TOKEN": platform}
    assert [t.name for t in tokens(journal).live_tokens(f"run-{record.exec_id}")] == [
        f"run-{record.exec_id}"
    ]


def test_otherwise_the_container_gets_the_submitters_journal(
    server: ServerProcess, journal: Journal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_JOURNAL_URL", server.journal_url)
    record = queued(journal)  # started by a process that opened the journal directly
    route = reporting(journal, record, STACK, {})
    assert route.environment == {"KITARU_JOURNAL_URL": server.journal_url}
    assert (route.secrets, route.server_url) == ({}, None)


def test_a_sweep_revokes_run_tokens_of_ended_executions_only(
    server: ServerProcess, journal: Journal
) -> None:
    store = tokens(journal)
    running = queued(journal)
    ending = queued(journal)
    keep = reporting(journal, running, STACK, {}, server.url).environment["KITARU_API_TOKEN"]
    end = reporting(journal, ending, STACK, {}, server.url).environment["KITARU_API_TOKEN"]
    # A run token whose execution this journal does not hold is no proof of an ended run.
    unknown = _tokens.mint_run_token(journal, new_id("kx"))
    assert journal.cancel_idle(ending.exec_id, expected_owner=None, now=time.time())

    sweeper = Sweeper(journal, interval=0)
    sweeper.sweep()
    assert _tokens.verify(store, end) is None
    assert all(_tokens.verify(store, t) is not None for t in (keep, unknown))
    with server.http(keep) as http:
        assert http.get("/api/v1/info").status_code == 200
    with server.http(end) as http:
        assert http.get("/api/v1/info").status_code == 401

    assert journal.cancel_idle(running.exec_id, expected_owner=None, now=time.time())
    sweeper.sweep()
    assert _tokens.verify(store, keep) is None
    assert _tokens.verify(store, unknown) is not None


def test_run_token_names_are_kept_for_the_server(journal: Journal) -> None:
    with pytest.raises(KitaruUsageError, match="kept for the tokens the server gives"):
        _tokens.create(journal, scope="write", name="run-kx_0123")
    _token, record = _tokens.create(journal, scope="write", name="runner")
    assert record.name == "runner"
