"""Journals: where executions, checkpoint calls, artifact records, waits and logs are kept.

`open_journal(url)` picks the backend by URL scheme: `sqlite:///path` (the embedded
default) or `postgresql://...` (needs `pip install "kitaru[postgres]"`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitaru import _config
from kitaru._errors import InvalidConfigurationError
from kitaru.journal import _records
from kitaru.journal._base import Journal
from kitaru.journal._records import (
    TERMINAL_STATUSES,
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    WaitRecord,
)
from kitaru.journal._snapshot import ExecutionSnapshot

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import (
        DeploymentRecord,
        QueueRecord,
        StackRecord,
        TagEvent,
        TagRecord,
        WorkerRecord,
    )

__all__ = [
    "TERMINAL_STATUSES",
    "ArtifactRecord",
    "CallRecord",
    "DeploymentRecord",
    "EventRecord",
    "ExecutionRecord",
    "ExecutionSnapshot",
    "Journal",
    "LogRecord",
    "QueueRecord",
    "StackRecord",
    "TagEvent",
    "TagRecord",
    "WaitRecord",
    "WorkerRecord",
    "connect_journal",
    "current_journal",
    "open_journal",
]


def __getattr__(name: str) -> Any:
    # The stack, deployment, queue and worker records are defined on first use
    # (kitaru/journal/_records.py says why).
    if name in _records.FLEET_RECORDS and name in __all__:
        value = globals()[name] = getattr(_records, name)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_open: dict[str, Journal] = {}
_open_lock = threading.Lock()


def open_journal(url: str) -> Journal:
    """A journal for `url`, shared by everything in this process that asks for the same URL."""
    with _open_lock:
        journal = _open.get(url)
        if journal is None:
            journal = _open[url] = _connect(url)
        return journal


def connect_journal(url: str) -> Journal:
    """A journal for `url` on a connection of its own, shared with nothing: the server
    reads its metrics on one, so that a scrape never holds the connection that runs
    commit through."""
    return _connect(url)


def current_journal() -> Journal:
    """The journal this process uses: KITARU_JOURNAL_URL, or the embedded SQLite file."""
    return open_journal(_config.journal_url())


def _connect(url: str) -> Journal:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise InvalidConfigurationError(
            f"journal URL {url!r} has no scheme; use sqlite:///path/to/journal.db "
            "or postgresql://user@host:5432/db"
        )
    if scheme == "sqlite":
        from kitaru.journal._sqlite import SqliteJournal

        path = Path(rest[1:] if rest.startswith("/") and rest[1:2] == "/" else rest)
        return SqliteJournal(url, path.expanduser(), _config.durability())
    if scheme in ("postgresql", "postgres"):
        try:
            from kitaru.journal._postgres import PostgresJournal
        except ImportError as exc:
            raise InvalidConfigurationError(
                f"a PostgreSQL journal needs psycopg ({exc}); "
                'install it with: pip install "kitaru[postgres]"'
            ) from None
        return PostgresJournal(url)
    if scheme in ("http", "https"):
        # A Kitaru server (KITARU_SERVER_URL): the journal over its API.
        from kitaru.journal._http import HttpJournal

        return HttpJournal(url)
    raise InvalidConfigurationError(
        f"journal URL scheme {scheme!r} is not supported; use sqlite:///, postgresql:// "
        "or a Kitaru server's http(s):// URL"
    )


def reset_for_tests() -> None:
    """Forget open journals (tests switch KITARU_HOME between cases)."""
    with _open_lock:
        for journal in _open.values():
            journal.close()
        _open.clear()
