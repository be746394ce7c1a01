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
from kitaru.journal import TERMINAL_STATUSES, Journal
from kitaru.journal._records import TokenRecord
from kitaru.journal._tokens import TokenRows

# What a token may do (docs/security.md has the table):
# - read: every GET;
# - write: also start, answer, resume, replay and cancel executions, run them (the runner
#   API), deploy and invoke;
# - admin: also stacks, settings, deployments' tags and deletion.
# Run tokens (scope `run`, named `run-<exec_id>`) are minted by the server for one run of
# one execution and reach only that execution's records.
SCOPES = ("read", "write", "admin")
RUN_SCOPE = "run"
PREFIX = "kt_"
# Names of the tokens the server mints for the containers it starts: `run-<exec_id>`.
RUN_PREFIX = "run-"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the token's id and scope, and for a run token the one
    execution it is bound to."""

    token_id: str
    scope: str
    execution: str | None = None

    @property
    def can_write(self) -> bool:
        return self.scope in ("write", "admin")

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"

    def may_touch(self, exec_id: str) -> bool:
        """Whether this caller may act on `exec_id` (a run token: its own only)."""
        return self.execution is None or self.execution == exec_id


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
        raise KitaruUsageError(f"unknown scope {scope!r}; use read, write or admin")
    if name is not None and name.startswith(RUN_PREFIX):
        raise KitaruUsageError(
            f"token name {name!r}: names starting with {RUN_PREFIX!r} are kept for the "
            "tokens the server gives the containers it starts (it revokes them when their "
            "execution ends); choose another name"
        )
    return _insert(token_store(journal), scope=scope, name=name)


def _insert(store: TokenRows, *, scope: str, name: str | None) -> tuple[str, TokenRecord]:
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


def mint_run_token(journal: object, exec_id: str) -> str:
    """A run token for the run of `exec_id` about to start, named `run-<exec_id>`: it
    reaches that execution's records only; earlier run tokens of the execution are
    revoked, so only the newest run can write.

    Mint it only once the execution is `queued`: the sweeper revokes the run tokens of
    executions it finds finished, and must not take this one for the previous run's."""
    store = token_store(journal)
    name = RUN_PREFIX + exec_id
    token, record = _insert(store, scope=RUN_SCOPE, name=name)
    now = time.time()
    for older in store.live_tokens(name):
        if older.name == name and older.token_id != record.token_id:
            store.revoke_token(older.token_id, now=now)
    return token


def revoke_finished_runs(journal: Journal) -> list[str]:
    """Revoke the run tokens of executions that have ended; return their ids.

    Tokens are read before executions: a token minted after this read is left for the
    next pass, and one read here belongs to an execution that was already `queued`, so
    a terminal status read afterwards means that very run ended. A token whose
    execution is not in the journal is left alone: nothing mints one without its
    execution, and absence is no proof that a run has ended."""
    store = token_store(journal)
    now = time.time()
    by_exec: dict[str, list[TokenRecord]] = {}
    for record in store.live_tokens(RUN_PREFIX):
        by_exec.setdefault(record.name[len(RUN_PREFIX) :], []).append(record)
    revoked: list[str] = []
    for exec_id, records in by_exec.items():
        execution = journal.get_execution(exec_id)
        if execution is None or execution.status not in TERMINAL_STATUSES:
            continue
        for record in records:
            if store.revoke_token(record.token_id, now=now):
                revoked.append(record.token_id)
    return revoked


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
    if record.name.startswith(RUN_PREFIX) and record.scope in (RUN_SCOPE, "write"):
        # Run tokens minted before scopes were split were `write` tokens: bound all the same.
        return Caller(record.token_id, RUN_SCOPE, record.name[len(RUN_PREFIX) :])
    if record.scope not in SCOPES:
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
