"""The journal on PostgreSQL, for teams, servers and remote stacks (`pip install "kitaru[postgres]"`).

One connection per process in autocommit mode; writes run in explicit transactions.
Commits follow the server's `synchronous_commit` setting (on by default: durable).

A lost connection, a restarting or shutting-down server, a serialization failure or a
deadlock is transient: the operation is retried on a new connection
(kitaru/journal/_retry.py). TCP keepalives (idle 10 s, 3 probes 5 s apart) and a 30 s
`tcp_user_timeout` turn a network that went silent into an error too, instead of a
read that never returns; parameters of the same names in the URL take precedence.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import urlparse

import psycopg

from kitaru._errors import ConfigurationError
from kitaru.journal._retry import retry_seconds
from kitaru.journal._sql import SqlJournal

_PLACEHOLDER = re.compile(r"\?")
_REFUSED_SECONDS = 5.0
# What a retry cannot mend: the URL or the server's configuration is wrong.
_PERMANENT = ("authentication failed", "does not exist", "no pg_hba.conf entry", "password")
_NETWORK: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30000,
}


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
        self._dsn = url.replace("postgres://", "postgresql://", 1)
        self._statements: dict[str, str] = {}
        # A process may start in the middle of a restart (a worker's child, a resume):
        # opening rides it out too, but a refused or misnamed server only for a few
        # seconds, so a wrong port or host is reported soon; a wrong password, at once.
        refused_until = time.monotonic() + min(retry_seconds(), _REFUSED_SECONDS)
        until = time.monotonic() + retry_seconds()
        delay = 0.05
        while True:
            try:
                self._conn = self._connect()
                try:
                    self._migrate()
                except BaseException:
                    self._conn.close()
                    raise
                return
            except psycopg.OperationalError as exc:
                text = str(exc)
                if any(word in text for word in _PERMANENT):
                    last = exc
                    break
                refused = "refused" in text or "translate host name" in text
                if time.monotonic() >= (refused_until if refused else until):
                    last = exc
                    break
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2.0)
        reason = str(last).strip().splitlines()[-1] if str(last).strip() else type(last).__name__
        raise ConfigurationError(
            f"cannot connect to the PostgreSQL journal at {parsed.hostname or 'localhost'}:"
            f"{parsed.port or 5432} (database {parsed.path.lstrip('/') or '(default)'}): "
            f"{reason.strip()}; check the host, port, credentials and that the server is running"
        ) from None

    def _connect(self) -> psycopg.Connection[Any]:
        given = psycopg.conninfo.conninfo_to_dict(self._dsn)
        options = {k: v for k, v in _NETWORK.items() if k not in given}
        return psycopg.connect(self._dsn, autocommit=True, **options)

    def _transient(self, exc: Exception) -> bool:
        # OperationalError covers a lost or refused connection, admin/crash shutdown,
        # "the database system is starting up", and class 40 (serialization failure,
        # deadlock); a statement that is wrong raises ProgrammingError or DataError.
        return isinstance(exc, psycopg.OperationalError)

    def _reconnect(self) -> None:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()

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

    @contextmanager
    def _read_tx(self) -> Iterator[Any]:
        """One read snapshot: every statement sees the database as the first one did."""
        with self._lock, self._conn.transaction():
            self._conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield self._conn

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self._conn.execute(self._sql(sql), params)

    def _bulk(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        # Binary rows: an output's bytes arrive as bytes rather than hex text to decode,
        # and numbers need no parsing (half the client's time on a 1000-call read).
        with self._lock:
            return self._conn.execute(self._sql(sql), params, binary=True).fetchall()

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(sql, rows)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
