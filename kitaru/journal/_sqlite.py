"""The embedded journal: one SQLite file in WAL mode.

`synchronous=NORMAL` in WAL mode means a commit is in the WAL file (the operating
system's page cache) when `commit_call` returns: it survives a killed process.
`KITARU_DURABILITY=fsync` switches to `synchronous=FULL`, which flushes the WAL on
every commit and so also survives power loss.

A journal this process may not write (a read-only `KITARU_HOME`) is opened read-only:
listing and reading work, and a write says why it cannot happen. A file that is not a
readable database raises `JournalDamagedError` naming the file and how to recover it,
whichever statement finds out.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote

from kitaru._config import Durability, writable
from kitaru._errors import (
    ConfigurationError,
    InvalidConfigurationError,
    JournalDamagedError,
    JournalUnavailableError,
)
from kitaru.journal._migrations import LATEST
from kitaru.journal._sql import SqlJournal

# How long a statement waits for another process's write lock before it fails.
BUSY_SECONDS = 30.0


class SqliteJournal(SqlJournal):
    types: ClassVar[dict[str, str]] = {
        "blob": "BLOB",
        "real": "REAL",
        "bigint": "INTEGER",
        "without_rowid": " WITHOUT ROWID",
    }

    def _json_text(self, doc: str, key: str) -> str:
        return f"json_extract({doc}, '$.{key}')"

    def _json_number(self, doc: str, key: str) -> str:
        return (
            f"CASE WHEN json_type({doc}, '$.{key}') IN ('integer', 'real') "
            f"THEN json_extract({doc}, '$.{key}') END"
        )

    def __init__(self, url: str, path: Path, durability: Durability) -> None:
        super().__init__(url)
        self.path = path
        self.read_only = path.exists() and not (writable(path.parent) and os.access(path, os.W_OK))
        try:
            if self.read_only:
                self._conn = _open_read_only(path)
                self._check_schema()
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS
            )
            _use_wal(self._conn)
            sync = "FULL" if durability is Durability.FSYNC else "NORMAL"
            self._conn.execute(f"PRAGMA synchronous={sync}")
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            if _damaged(exc):
                self._damaged(exc)
            raise ConfigurationError(
                f"cannot open the journal at {path} ({exc}); check that the directory is "
                "writable, or point KITARU_HOME / KITARU_JOURNAL_URL somewhere else"
            ) from None

    def _check_schema(self) -> None:
        version = self.schema_version()
        if version < LATEST:
            raise InvalidConfigurationError(
                f"the journal at {self.path} is read-only and has schema version {version}; "
                f"this kitaru needs {LATEST}, and upgrading it writes to the file: open it "
                "once with write access, or use the kitaru that wrote it"
            )
        if version > LATEST:
            raise InvalidConfigurationError(
                f"the journal at {self.path} has schema version {version}, newer than this "
                f"kitaru understands ({LATEST}); upgrade kitaru (pip install -U kitaru)"
            )

    def _damaged(self, exc: sqlite3.DatabaseError) -> NoReturn:
        raise JournalDamagedError(damaged_message(self.path, str(exc))) from None

    def _failed(self, exc: sqlite3.DatabaseError) -> NoReturn:
        """Turn what SQLite says about the file into what the user can do about it."""
        if _damaged(exc):
            self._damaged(exc)
        if _full(exc):
            raise JournalUnavailableError(full_message(self.path, str(exc))) from None
        if "readonly" in str(exc):
            raise InvalidConfigurationError(
                f"the journal at {self.path} is read-only here: reading executions works, "
                "this needs to write; set KITARU_HOME (or KITARU_JOURNAL_URL) to a place "
                "you can write"
            ) from None
        raise exc

    def _transient(self, exc: Exception) -> bool:
        # Past the 30 s busy timeout: another process holds the write lock (a long
        # migration, a backup); it lets go.
        return isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "busy" in str(exc)
        )

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        # Every transaction here writes: take the write lock at BEGIN. A deferred one
        # would start as a reader, and a reader whose snapshot another process's commit
        # made stale cannot become a writer: SQLite fails it with "database is locked" at
        # once, without waiting (workers, their executions and a server all write one
        # file).
        return self._transaction("BEGIN IMMEDIATE")

    def _read_tx(self) -> AbstractContextManager[Any]:
        """One read snapshot (a deferred transaction: its first read fixes it; in WAL mode
        writers go on meanwhile)."""
        return self._transaction("BEGIN")

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Any]:
        with self._lock:
            conn = self._conn
            try:
                conn.execute(begin)
            except sqlite3.DatabaseError as exc:
                self._failed(exc)
            try:
                yield conn
            except sqlite3.DatabaseError as exc:
                _rollback(conn)
                self._failed(exc)
            except BaseException:
                _rollback(conn)
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                _rollback(conn)
                self._failed(exc)

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # The rows are read before the lock is released: a statement still stepping
        # holds a read snapshot on the shared connection, and another thread's write
        # transaction on it would then fail at once (SQLITE_BUSY_SNAPSHOT) as soon as
        # another process had committed since.
        with self._lock:
            try:
                cur = self._conn.execute(sql, params)
                return _Rows(cur.fetchall(), cur.rowcount)
            except sqlite3.DatabaseError as exc:
                self._failed(exc)

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        # `_x` for a write with no rows to read (every checkpoint's commit): sqlite3
        # steps such a statement to its end inside execute().
        with self._lock:
            try:
                return int(self._conn.execute(sql, params).rowcount)
            except sqlite3.DatabaseError as exc:
                self._failed(exc)

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _Rows:
    """A statement's rows, all read."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def _use_wal(conn: sqlite3.Connection, wait: float = BUSY_SECONDS) -> None:
    """Switch the file to WAL mode, waiting out other processes doing the same.

    Switching a new file's journal mode takes an exclusive lock and, unlike other
    statements, fails at once with "database is locked" when it cannot get one: SQLite
    does not call the busy handler there. Two processes opening one fresh journal (two
    `kitaru executions import` at once) would see that, so the switch is tried again for
    as long as the busy timeout.
    """
    deadline = time.monotonic() + wait
    delay = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def _open_read_only(path: Path) -> sqlite3.Connection:
    # `mode=ro` reads a WAL journal when its -wal and -shm files exist or can be made;
    # in a directory we may not write, a journal closed cleanly has neither, and only
    # `immutable=1` opens it (safe here: nobody without write access changes it under us
    # through this process, and a writer elsewhere is seen on the next open).
    base = "file:" + quote(str(path))
    conn = sqlite3.connect(
        base + "?mode=ro",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
        timeout=BUSY_SECONDS,
    )
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
    return sqlite3.connect(
        base + "?immutable=1", uri=True, isolation_level=None, check_same_thread=False
    )


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.DatabaseError:
        pass  # no transaction left to roll back (SQLite ended it on the error)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    # sqlite3 raises the base DatabaseError for SQLITE_NOTADB and SQLITE_CORRUPT; its
    # subclasses are other troubles (locked, constraint, read-only).
    return type(exc) is sqlite3.DatabaseError or "malformed" in str(exc)


def _full(exc: sqlite3.DatabaseError) -> bool:
    # SQLITE_FULL; a WAL or shared-memory file that cannot grow says disk I/O error.
    text = str(exc)
    return "disk is full" in text or "disk I/O error" in text


def full_message(path: Path, reason: str) -> str:
    """One line: the file, what SQLite said, the free space, what to do."""
    import shutil

    try:
        free = f"{shutil.disk_usage(path.parent).free / 1024:.0f} KiB free"
    except OSError:
        free = "free space unknown"
    return (
        f"the journal {path} cannot be written ({reason}; {free} on its file system); "
        "the last transaction was rolled back and nothing is half-written: free some "
        "space and try again"
    )


def damaged_message(path: Path, reason: str) -> str:
    """One line: what is wrong, that nothing else is lost, and where to go next."""
    return (
        f"the journal {path} is damaged ({reason}); nothing was changed and artifact "
        f'files are untouched; run `kitaru doctor` to see how to recover it (sqlite3 "{path}" '
        '".recover")'
    )
