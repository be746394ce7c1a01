"""The embedded journal: one SQLite file in WAL mode.

`synchronous=NORMAL` in WAL mode means a commit is in the WAL file (the operating
system's page cache) when `commit_call` returns: it survives a killed process.
`KITARU_DURABILITY=fsync` switches to `synchronous=FULL`, which flushes the WAL on
every commit and so also survives power loss.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from kitaru._config import Durability
from kitaru._errors import ConfigurationError
from kitaru.journal._sql import SqlJournal


class SqliteJournal(SqlJournal):
    types: ClassVar[dict[str, str]] = {
        "blob": "BLOB",
        "real": "REAL",
        "bigint": "INTEGER",
        "without_rowid": " WITHOUT ROWID",
    }

    def __init__(self, url: str, path: Path, durability: Durability) -> None:
        super().__init__(url)
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
            sync = "FULL" if durability is Durability.FSYNC else "NORMAL"
            self._conn.execute(f"PRAGMA synchronous={sync}")
            self._conn.execute("PRAGMA busy_timeout=30000")
            self._migrate()
        except sqlite3.OperationalError as exc:
            raise ConfigurationError(
                f"cannot open the journal at {path} ({exc}); check that the directory is "
                "writable, or point KITARU_HOME / KITARU_JOURNAL_URL somewhere else"
            ) from None

    @contextmanager
    def _tx(self, *, immediate: bool = False) -> Iterator[Any]:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(sql, params)

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        conn.executemany(sql, rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
