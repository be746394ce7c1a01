"""The journal over SQL, shared by the SQLite and PostgreSQL backends.

Subclasses supply the connection, the transaction boundaries and the dialect's
column types. The statements live with their tables, one mixin per family:
executions, calls and artifacts, waits, stacks (`_executions.py`, `_calls.py`,
`_waits.py`, `_stacks.py`; columns and row converters in `_rows.py`), then tokens,
deployments, queues, stats, the live feed, the call cache, schedules and retention.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from kitaru._errors import InvalidConfigurationError
from kitaru.journal import _settled
from kitaru.journal._base import Journal
from kitaru.journal._cache import CacheRows
from kitaru.journal._calls import CallRows
from kitaru.journal._deployments import DeploymentRows
from kitaru.journal._events import EventRows
from kitaru.journal._executions import ExecutionRows
from kitaru.journal._migrations import LATEST, MIGRATIONS, statements
from kitaru.journal._queues import QueueRows
from kitaru.journal._records import ArtifactRecord, CallRecord, LogRecord
from kitaru.journal._retention import RetentionRows
from kitaru.journal._retry import retried, ride_out
from kitaru.journal._schedules import ScheduleRows
from kitaru.journal._snapshot import SnapshotReads
from kitaru.journal._stacks import StackRows
from kitaru.journal._stats import StatsRows
from kitaru.journal._tokens import TokenRows
from kitaru.journal._waits import WaitRows


class SqlJournal(
    ExecutionRows,
    CallRows,
    WaitRows,
    StackRows,
    TokenRows,
    DeploymentRows,
    QueueRows,
    StatsRows,
    EventRows,
    CacheRows,
    ScheduleRows,
    RetentionRows,
    SnapshotReads,
):
    """Everything but the connection; see `SqliteJournal` and `PostgresJournal`."""

    url: str
    types: ClassVar[dict[str, str]]

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()

    # -- dialect hooks -------------------------------------------------------------------
    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _null_eq(self) -> str:
        return "IS"

    def _transient(self, exc: Exception) -> bool:
        """Whether `exc` is trouble that passes (kitaru/journal/_retry.py)."""
        return False

    def _reconnect(self) -> None:
        """Before a retry: a fresh connection if the old one broke."""

    def close(self) -> None:
        raise NotImplementedError

    # -- schema --------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._tx(immediate=True) as conn:
            conn.execute(
                self._sql("CREATE TABLE IF NOT EXISTS kitaru_schema (version INTEGER NOT NULL)")
            )
            row = conn.execute(self._sql("SELECT MAX(version) FROM kitaru_schema")).fetchone()
            current = row[0] if row and row[0] is not None else 0
            if current > LATEST:
                raise InvalidConfigurationError(
                    f"the journal at {self.url} has schema version {current}, newer than this "
                    f"kitaru understands ({LATEST}); upgrade kitaru (pip install -U kitaru)"
                )
            for version, sql in MIGRATIONS:
                if version <= current:
                    continue
                for stmt in statements(sql, self.types):
                    conn.execute(self._sql(stmt))
                conn.execute(
                    self._sql("INSERT INTO kitaru_schema (version) VALUES (?)"), (version,)
                )

    def schema_version(self) -> int:
        row = self._x("SELECT MAX(version) FROM kitaru_schema").fetchone()
        return int(row[0])

    def _sql(self, sql: str) -> str:
        return sql


# Every operation of the contract (and the server's token and stats reads) rides out
# transient errors; writes that are not idempotent as written are checked first.
_RETRIED = (
    {n for n in vars(Journal) if not n.startswith("_") and callable(getattr(Journal, n))}
    | {"get_token", "list_tokens", "live_tokens", "touch_token", "journal_stats"}
) - {"close"}
for _name in sorted(_RETRIED):
    setattr(
        SqlJournal,
        _name,
        retried(_settled.CHECKS.get(_name))(getattr(SqlJournal, _name)),
    )


def _commit_call(
    self: SqlJournal,
    call: CallRecord,
    output: ArtifactRecord | None,
    logs: Sequence[LogRecord],
    *,
    owner: str,
) -> bool:
    """`commit_call`, retried as the loop above retries every method, written out with
    its own arguments: it is every checkpoint's path, where a wrapper taking `*args` and
    `**kwargs` costs a few per cent of the call."""
    try:
        return _commit_call_once(self, call, output, logs, owner=owner)
    except Exception as exc:
        if not self._transient(exc):
            raise
        first = exc
    return ride_out(
        self, _commit_call_once, _settled.commit_call, first, call, output, logs, owner=owner
    )


_commit_call_once = CallRows.commit_call
SqlJournal.commit_call = _commit_call  # type: ignore[method-assign, assignment]
