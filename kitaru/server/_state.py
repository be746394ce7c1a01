"""What a running server holds: its journal, the artifact stores it serves, its secret."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from kitaru._errors import ConfigurationError
from kitaru.artifacts import ArtifactStore, open_store
from kitaru.journal import Journal, open_journal
from kitaru.journal._tokens import TokenRows
from kitaru.server._group_commit import GroupCommit
from kitaru.server._tokens import Caller, token_store, verify

MiB = 1024 * 1024
TOKEN_CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class ServerConfig:
    journal_url: str
    # The first store is where clients without a store of their own keep artifacts;
    # the others are stores of executions the server may read (and proxy) as well.
    artifact_stores: tuple[str, ...]
    max_upload_bytes: int = 256 * MiB
    # JSON bodies (everything but artifact uploads): a call with its logs, an answer.
    max_json_bytes: int = 4 * MiB
    sweep_interval: float = 10.0
    # Seconds between looks for due schedules (0: this replica fires none).
    schedule_interval: float = 1.0
    # Where people and the containers the server starts reach it (`--public-url`);
    # never taken from a request or a record.
    public_url: str | None = None
    # Seconds between a replica's reads of the journal for /metrics (0: every scrape).
    metrics_interval: float = 30.0
    # Delete executions that ended longer ago than this many seconds (None: never), and
    # look for them every `retention_interval` seconds (kitaru/server/_keeper.py).
    retention: float | None = None
    retention_interval: float = 3600.0
    secret: str | None = field(default=None, repr=False)


class ServerState:
    def __init__(self, config: ServerConfig) -> None:
        if config.journal_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                "a server needs a journal of its own (postgresql://... or sqlite:///...), "
                f"not another server's URL ({config.journal_url})"
            )
        self.config = config
        self.journal: Journal = open_journal(config.journal_url)
        self.tokens: TokenRows = token_store(self.journal)
        # Checkpoint calls arriving together are committed together.
        self.commits = GroupCommit(self.journal)
        stores = [open_store(uri) for uri in config.artifact_stores]
        for store in stores:
            store.check()
        self.default_store: ArtifactStore = stores[0]
        self.stores: dict[str, ArtifactStore] = {s.uri.rstrip("/"): s for s in stores}
        secret = config.secret or os.environ.get("KITARU_SERVER_SECRET")
        self.secret = (secret or self.tokens.server_secret("signing")).encode()
        self._used: dict[str, float] = {}
        self._used_lock = threading.Lock()
        self._verified: dict[str, tuple[float, Caller]] = {}
        from kitaru.server._metrics import Metrics

        self.metrics = Metrics(config.journal_url, config.metrics_interval)

    def store(self, root: str) -> ArtifactStore | None:
        return self.stores.get(root.rstrip("/"))

    def cached_caller(self, token: str) -> Caller | None:
        """A token verified less than TOKEN_CACHE_SECONDS ago: no journal round trip on
        every request. A revocation reaches every replica within that time."""
        found = self._verified.get(token)
        if found is not None and time.monotonic() - found[0] < TOKEN_CACHE_SECONDS:
            return found[1]
        return None

    def authenticate(self, token: str) -> Caller | None:
        caller = self.cached_caller(token)
        if caller is not None:
            return caller
        caller = verify(self.tokens, token)
        if caller is not None:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = (time.monotonic(), caller)
            self._note_use(caller.token_id)
        return caller

    def revoke(self, token_id: str) -> None:
        """Revoke a token now, and forget that this replica verified it."""
        self.tokens.revoke_token(token_id, now=time.time())
        self._verified = {
            t: found for t, found in self._verified.items() if found[1].token_id != token_id
        }

    def _note_use(self, token_id: str) -> None:
        # `token list` shows when a token was last used; a write per minute is plenty.
        now = time.time()
        with self._used_lock:
            if now - self._used.get(token_id, 0.0) < 60:
                return
            self._used[token_id] = now
        self.tokens.touch_token(token_id, now=now)
