"""API tokens and server secrets in the SQL journals (schema 2), on SQLite and PostgreSQL.
(The HTTP journal has none: token commands refuse a server URL, see tests/server.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from kitaru._errors import KitaruUsageError, NotFoundError
from kitaru.journal import Journal, open_journal
from kitaru.server import _tokens
from tests.journal.conftest import fresh_postgres_url


@pytest.fixture(params=["sqlite", "postgres"])
def sql_journal(request: pytest.FixtureRequest, tmp_path: Path) -> Journal:
    if request.param == "sqlite":
        return open_journal(f"sqlite:///{tmp_path / 'journal.db'}")
    return open_journal(fresh_postgres_url())


def test_tokens_are_stored_hashed_verified_and_revoked(sql_journal: Journal) -> None:
    journal = sql_journal
    token, record = _tokens.create(journal, scope="read", name="dashboard")
    store = _tokens.token_store(journal)
    assert token.startswith(f"kt_{record.token_id}_")
    [listed] = store.list_tokens()
    assert listed.name == "dashboard" and listed.scope == "read"
    assert token not in repr(listed) and listed.token_hash != token
    caller = _tokens.verify(store, token)
    assert caller is not None and caller.scope == "read" and not caller.can_write
    for wrong in (
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        "kt_",
        "nope",
        f"kt_{record.token_id}_",
    ):
        assert _tokens.verify(store, wrong) is None
    store.touch_token(record.token_id, now=123.0)
    assert store.list_tokens()[0].last_used_at == 123.0
    revoked = _tokens.revoke(journal, token)  # the token itself works as well as its id
    assert revoked.revoked_at is not None
    assert _tokens.verify(store, token) is None
    with pytest.raises(NotFoundError, match="no API token"):
        _tokens.revoke(journal, "missing")
    with pytest.raises(KitaruUsageError, match="read, write or admin"):
        _tokens.create(journal, scope="root")


def test_the_server_secret_is_created_once(sql_journal: Journal) -> None:
    store = _tokens.token_store(sql_journal)
    first = store.server_secret("signing")
    assert len(first) == 64 and store.server_secret("signing") == first
    assert store.server_secret("other") != first


def test_live_tokens_by_exact_name_prefix(sql_journal: Journal) -> None:
    """What the sweeper finds run tokens by: exact prefixes, `_` and `%` taken literally,
    case kept (SQLite's LIKE alone would ignore it), revoked tokens left out."""
    store = _tokens.token_store(sql_journal)
    for name in ("run-kx_1", "run-kxA", "RUN-kx_2", "run-kx_%", "ci"):
        _tokens._insert(store, scope="write", name=name)
    revoked = _tokens.mint_run_token(sql_journal, "kx_3")
    _tokens.mint_run_token(sql_journal, "kx_3")  # revokes the first: one live run-kx_3
    assert _tokens.verify(store, revoked) is None
    assert sorted(t.name for t in store.live_tokens("run-kx_")) == [
        "run-kx_%",
        "run-kx_1",
        "run-kx_3",
    ]
    assert [t.name for t in store.live_tokens("run-kx_%")] == ["run-kx_%"]
