"""API tokens: `kt_<id>_<secret>`, of which the journal keeps only a SHA-256 hash.

The secret part has 256 random bits, so a fast hash is enough: there is nothing to
guess that a slow password hash would protect. Lookups go by id, and the hash is
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from kitaru._errors import ConfigurationError, KitaruUsageError
from kitaru.journal._records import TokenRecord
from kitaru.journal._tokens import TokenRows

SCOPES = ("read", "write")
PREFIX = "kt_"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the token's id and scope."""

    token_id: str
    scope: str

    @property
    def can_write(self) -> bool:
        return self.scope == "write"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_store(journal: object) -> TokenRows:
    """The journal as a token store; tokens live only in a journal opened directly."""
    if not isinstance(journal, TokenRows):
        raise ConfigurationError(
            "API tokens are kept in the server's journal: pass it with --journal URL "
            "(postgresql://... or sqlite:///...), not a server URL"
        )
    return journal


def create(journal: object, *, scope: str, name: str | None = None) -> tuple[str, TokenRecord]:
    """A new token: (the token to hand out, shown once; its stored record)."""
    if scope not in SCOPES:
        raise KitaruUsageError(f"unknown scope {scope!r}; use read or write")
    store = token_store(journal)
    token_id = secrets.token_hex(6)
    token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    record = TokenRecord(
        token_id=token_id,
        name=name or f"{scope}-{token_id}",
        scope=scope,
        token_hash=_hash(token),
        created_at=time.time(),
    )
    store.create_token(record)
    return token, record


def verify(store: TokenRows, token: str) -> Caller | None:
    """The caller a presented token stands for; None for anything not a live token."""
    if not token.startswith(PREFIX):
        return None
    token_id, sep, _secret = token[len(PREFIX) :].partition("_")
    if not sep or not token_id:
        return None
    record = store.get_token(token_id)
    if record is None or record.revoked_at is not None:
        return None
    if not hmac.compare_digest(record.token_hash, _hash(token)):
        return None
    return Caller(record.token_id, record.scope)


def revoke(journal: object, token_id: str) -> TokenRecord:
    store = token_store(journal)
    token_id = token_id.removeprefix(PREFIX).partition("_")[0]
    record = store.get_token(token_id)
    if record is None:
        known = ", ".join(t.token_id for t in store.list_tokens()) or "none"
        raise _not_found(f"no API token with id {token_id!r}; tokens: {known}")
    if record.revoked_at is None:
        store.revoke_token(token_id, now=time.time())
    revoked = store.get_token(token_id)
    assert revoked is not None
    return revoked


def _not_found(message: str) -> Exception:
    from kitaru._errors import NotFoundError

    return NotFoundError(message)
