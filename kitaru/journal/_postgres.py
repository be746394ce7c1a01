"""The journal on PostgreSQL, for teams, servers and remote stacks (`pip install "kitaru[postgres]"`).

One connection per process in autocommit mode; writes run in explicit transactions.
Commits follow the server's `synchronous_commit` setting (on by default: durable).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import urlparse

import psycopg

from kitaru._errors import ConfigurationError
from kitaru.journal._sql import SqlJournal

_PLACEHOLDER = re.compile(r"\?")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


class PostgresJournal(SqlJournal):
    types: ClassVar[dict[str, str]] = {
        "blob": "BYTEA",
        "real": "DOUBLE PRECISION",
        "bigint": "BIGINT",
        "without_rowid": "",
    }
    # Claims of one queue run one at a time (its limits are read then used); candidate
    # rows another transaction holds (a resume taking its lease) are skipped.
    QUEUE_LOCK = "SELECT pg_advisory_xact_lock(727275, hashtext(?))"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    FOR_UPDATE = " FOR UPDATE"
    JSON_DOC = "{col}::json"

    def _json_text(self, doc: str, key: str) -> str:
        return f"({doc} ->> '{key}')"

    def _json_number(self, doc: str, key: str) -> str:
        return (
            f"CASE WHEN json_typeof({doc} -> '{key}') = 'number' "
            f"THEN CAST({doc} ->> '{key}' AS DOUBLE PRECISION) END"
        )

    def __init__(self, url: str) -> None:
        super().__init__(redact(url))
        parsed = urlparse(url)
        dsn = url.replace("postgres://", "postgresql://", 1)
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise ConfigurationError(
                f"cannot connect to the PostgreSQL journal at {parsed.hostname or 'localhost'}:"
                f"{parsed.port or 5432} (database {parsed.path.lstrip('/') or '(default)'}): "
                f"{reason}; check the host, port, credentials and that the server is running"
            ) from None
        self._statements: dict[str, str] = {}
        self._migrate()

    def _sql(self, sql: str) -> str:
        converted = self._statements.get(sql)
        if converted is None:
            converted = self._statements[sql] = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
        return converted

    def _null_eq(self) -> str:
        return "IS NOT DISTINCT FROM"

    @contextmanager
    def _tx(self, *, immediate: bool = False) -> Iterator[Any]:
        with self._lock, self._conn.transaction():
            if immediate:
                # Serialize schema migrations and read-modify-writes across processes.
                self._conn.execute("SELECT pg_advisory_xact_lock(727274)")
            yield self._conn

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(self._sql(sql), params)

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
