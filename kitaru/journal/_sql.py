"""The journal over SQL, shared by the SQLite and PostgreSQL backends.

Subclasses supply the connection, the transaction boundaries and the dialect's
column types; every statement here is written once, with `?` placeholders.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from kitaru._errors import InvalidConfigurationError
from kitaru.journal import _settled
from kitaru.journal._base import Journal
from kitaru.journal._cache import CacheRows
from kitaru.journal._deployments import DeploymentRows
from kitaru.journal._events import EventRows
from kitaru.journal._migrations import LATEST, MIGRATIONS, statements
from kitaru.journal._queues import QueueRows
from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    ExecutionRecord,
    LogRecord,
    StackRecord,
    WaitRecord,
    parse_call_output_id,
)
from kitaru.journal._retention import RetentionRows
from kitaru.journal._retry import retried
from kitaru.journal._schedules import ScheduleRows
from kitaru.journal._snapshot import SnapshotReads
from kitaru.journal._stats import StatsRows
from kitaru.journal._tokens import TokenRows

EXEC_COLS = (
    "exec_id, flow, status, created_at, updated_at, ended_at, flow_ref, flow_file, import_path, "
    "python, stack, orchestrator, run_id, owner, heartbeat_at, lease_until, cancel_requested, "
    "runs, replayed_from, replay_point, error, result_artifact, artifact_store, metadata, argv, "
    "project_root, deployment_version, invocation_id, queue, priority, worker, claimed_at, "
    "idempotency_key"
)
ART_COLS = (
    "artifact_id, exec_id, name, version, producer, producer_key, type_ref, serializer, "
    "content_hash, size, uri, created_at, metadata, inline"
)
ART_COLS_NO_INLINE = ART_COLS.replace(", inline", "")
CALL_COLS = (
    "exec_id, key, seq, name, func, status, started_at, ended_at, run, kind, attempts, "
    "output_artifact, error, traceback, reused_from, metadata, branch, pos, fingerprint"
)
# A checkpoint call's output lives in the call's row: one row per commit on the hot path.
OUT_COLS = "out_type_ref, out_serializer, out_hash, out_size, out_uri, out_inline, out_producer"
CALL_ROW = f"{CALL_COLS}, {OUT_COLS}"
WAIT_COLS = (
    "exec_id, key, name, seq, question, schema, created_at, status, timeout_at, default_value, "
    "has_default, call_site, answered_at, value_artifact, metadata"
)
LOG_COLS = "exec_id, call_key, run, ts, stream, text"
STACK_COLS = (
    "name, orchestrator, artifact_store, journal, registry, builder, settings, created_at, "
    "updated_at"
)


def _marks(cols: str) -> str:
    return ", ".join("?" for _ in cols.split(","))


def _json(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value, default=str) if value else None


def _unjson(raw: str | None) -> dict[str, Any]:
    return json.loads(raw) if raw else {}


def _execution(row: Sequence[Any]) -> ExecutionRecord:
    r = list(row)
    r[16] = bool(r[16])
    r[23] = _unjson(r[23])
    r[24] = json.loads(r[24]) if r[24] else []
    r[29] = r[29] or 0
    return ExecutionRecord(*r)


def _artifact(row: Sequence[Any], with_inline: bool = True) -> ArtifactRecord:
    (aid, eid, name, version, producer, pkey, tref, ser, chash, size, uri, created, meta) = row[:13]
    inline = row[13] if with_inline and len(row) > 13 else None
    return ArtifactRecord(
        aid,
        eid,
        name,
        version,
        producer,
        pkey,
        tref,
        ser,
        chash,
        size,
        uri,
        created,
        bytes(inline) if inline is not None else None,
        _unjson(meta),
    )


def _call(row: Sequence[Any]) -> CallRecord:
    """A call and its output artifact from a CALL_ROW row (hot: a replay reads every row)."""
    (eid, key, seq, name, func, status, started, ended, run, kind, attempts, out_id, error,
     tb, reused_from, meta, branch, pos, fp, type_ref, serializer, digest, size, uri, inline,
     producer) = row  # fmt: skip
    call = CallRecord(
        eid, key, seq, name, func, status, started, ended, run, kind, attempts, out_id, error,
        tb, reused_from, json.loads(meta) if meta else {}, None, branch or "", pos, fp,
    )  # fmt: skip
    if out_id is not None and serializer is not None:
        call.output = ArtifactRecord(
            out_id, reused_from or eid, key, 1, producer or kind, key, type_ref, serializer,
            digest, size, uri, ended,
            inline if inline is None or type(inline) is bytes else bytes(inline), {},
        )  # fmt: skip
    return call


def _wait(row: Sequence[Any]) -> WaitRecord:
    (
        eid,
        key,
        name,
        seq,
        question,
        schema,
        created,
        status,
        timeout_at,
        default,
        has_default,
        call_site,
        answered_at,
        value_artifact,
        meta,
    ) = row
    return WaitRecord(
        eid,
        key,
        name,
        seq,
        question,
        json.loads(schema),
        created,
        status,
        timeout_at,
        json.loads(default) if default is not None else None,
        bool(has_default),
        call_site,
        answered_at,
        value_artifact,
        _unjson(meta),
    )


def _artifact_params(a: ArtifactRecord) -> tuple[Any, ...]:
    return (
        a.artifact_id,
        a.exec_id,
        a.name,
        a.version,
        a.producer,
        a.producer_key,
        a.type_ref,
        a.serializer,
        a.content_hash,
        a.size,
        a.uri,
        a.created_at,
        _json(a.metadata),
        a.inline,
    )


def _log_params(logs: Sequence[LogRecord]) -> list[tuple[Any, ...]]:
    return [(g.exec_id, g.call_key, g.run, g.ts, g.stream, g.text) for g in logs]


_INSERT_CALL = (
    f"INSERT INTO calls ({CALL_ROW}) SELECT {_marks(CALL_ROW)} "
    "WHERE EXISTS (SELECT 1 FROM executions WHERE exec_id = ? AND owner = ?) "
    "ON CONFLICT (exec_id, seq) DO UPDATE SET "
    + ", ".join(
        f"{c.strip()} = excluded.{c.strip()}"
        for c in CALL_ROW.split(",")
        if c.strip() not in ("exec_id", "seq")
    )
    # A row is only ever replaced by the same call run again, never by another call.
    + " WHERE calls.key = excluded.key"
)
# Producers whose artifacts are call outputs, stored in the calls table.
_CALL_PRODUCERS = frozenset({"checkpoint", "llm", "override"})
_INSERT_ARTIFACT = f"INSERT INTO artifacts ({ART_COLS}) VALUES ({_marks(ART_COLS)})"
# Only the idempotency key's conflict is absorbed: a taken exec_id is still an error.
_INSERT_EXECUTION = (
    f"INSERT INTO executions ({EXEC_COLS}) VALUES ({_marks(EXEC_COLS)}) "
    "ON CONFLICT (idempotency_key, flow) WHERE idempotency_key IS NOT NULL DO NOTHING"
)
_INSERT_LOG = f"INSERT INTO logs ({LOG_COLS}) VALUES ({_marks(LOG_COLS)})"


class SqlJournal(
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

    # -- executions ----------------------------------------------------------------------
    def create_execution(self, execution: ExecutionRecord, inputs: Sequence[ArtifactRecord]) -> str:
        with self._tx() as conn:
            return self._insert_execution(conn, execution, inputs)

    def _insert_execution(
        self, conn: Any, execution: ExecutionRecord, inputs: Sequence[ArtifactRecord]
    ) -> str:
        """Within the transaction `conn`: the execution and its input artifacts; or, when
        its idempotency key is taken for its flow, nothing. Returns the id stored."""
        e = execution
        params = (
            e.exec_id,
            e.flow,
            e.status,
            e.created_at,
            e.updated_at,
            e.ended_at,
            e.flow_ref,
            e.flow_file,
            e.import_path,
            e.python,
            e.stack,
            e.orchestrator,
            e.run_id,
            e.owner,
            e.heartbeat_at,
            e.lease_until,
            int(e.cancel_requested),
            e.runs,
            e.replayed_from,
            e.replay_point,
            e.error,
            e.result_artifact,
            e.artifact_store,
            _json(e.metadata),
            json.dumps(e.argv) if e.argv else None,
            e.project_root,
            e.deployment_version,
            e.invocation_id,
            e.queue,
            e.priority,
            e.worker,
            e.claimed_at,
            e.idempotency_key,
        )
        cur = conn.execute(self._sql(_INSERT_EXECUTION), params)
        if e.idempotency_key is not None and cur.rowcount != 1:
            # The unique index decided: another start stored this key first (committed
            # before this insert went on, so this transaction reads it).
            row = conn.execute(
                self._sql("SELECT exec_id FROM executions WHERE idempotency_key = ? AND flow = ?"),
                (e.idempotency_key, e.flow),
            ).fetchone()
            return str(row[0])
        if inputs:
            self._many(conn, self._sql(_INSERT_ARTIFACT), [_artifact_params(a) for a in inputs])
        return e.exec_id

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        row = self._x(
            f"SELECT {EXEC_COLS} FROM executions WHERE exec_id = ?", (exec_id,)
        ).fetchone()
        return _execution(row) if row else None

    def list_executions(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        replayed_from: str | None = None,
        idempotency_key: str | None = None,
        limit: int = 100,
    ) -> list[ExecutionRecord]:
        where, params = [], []
        for col, val in (
            ("flow", flow),
            ("status", status),
            ("replayed_from", replayed_from),
            ("idempotency_key", idempotency_key),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self._x(
            f"SELECT {EXEC_COLS} FROM executions {clause} ORDER BY created_at DESC, exec_id DESC LIMIT ?",
            (*params, limit),
        ).fetchall()
        return [_execution(r) for r in rows]

    def take_lease(
        self,
        exec_id: str,
        *,
        owner: str,
        expected_owner: str | None,
        statuses: Sequence[str],
        now: float,
        lease_until: float,
    ) -> bool:
        marks = ", ".join("?" for _ in statuses)
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    "UPDATE executions SET owner = ?, status = 'running', runs = runs + 1, "
                    "heartbeat_at = ?, lease_until = ?, updated_at = ?, ended_at = NULL, "
                    "error = NULL, worker = NULL "
                    f"WHERE exec_id = ? AND owner {self._null_eq()} ? "
                    f"AND status IN ({marks}) AND cancel_requested = 0"
                ),
                (owner, now, lease_until, now, exec_id, expected_owner, *statuses),
            )
            return bool(cur.rowcount == 1)

    def heartbeat(self, exec_id: str, *, owner: str, now: float, lease_until: float) -> bool | None:
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    "UPDATE executions SET heartbeat_at = ?, lease_until = ? "
                    "WHERE exec_id = ? AND owner = ?"
                ),
                (now, lease_until, exec_id, owner),
            )
            if cur.rowcount != 1:
                return None
            row = conn.execute(
                self._sql("SELECT cancel_requested FROM executions WHERE exec_id = ?"), (exec_id,)
            ).fetchone()
            return bool(row[0])

    def finish(
        self,
        exec_id: str,
        *,
        owner: str,
        status: str,
        now: float,
        error: str | None = None,
        result: ArtifactRecord | None = None,
    ) -> bool:
        ended = None if status == "waiting" else now
        try:
            with self._tx() as conn:
                cur = conn.execute(
                    self._sql(
                        "UPDATE executions SET status = ?, owner = NULL, lease_until = NULL, "
                        "updated_at = ?, ended_at = ?, error = ?, result_artifact = ? "
                        "WHERE exec_id = ? AND owner = ?"
                    ),
                    (
                        status,
                        now,
                        ended,
                        error,
                        result.artifact_id if result else None,
                        exec_id,
                        owner,
                    ),
                )
                if cur.rowcount != 1:
                    raise _Rollback
                if result is not None:
                    conn.execute(self._sql(_INSERT_ARTIFACT), _artifact_params(result))
        except _Rollback:
            return False
        return True

    def request_cancel(self, exec_id: str, *, now: float) -> None:
        with self._tx() as conn:
            conn.execute(
                self._sql(
                    "UPDATE executions SET cancel_requested = 1, updated_at = ? WHERE exec_id = ?"
                ),
                (now, exec_id),
            )

    def cancel_idle(self, exec_id: str, *, expected_owner: str | None, now: float) -> bool:
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    "UPDATE executions SET status = 'cancelled', cancel_requested = 1, owner = NULL, "
                    "lease_until = NULL, updated_at = ?, ended_at = ? "
                    f"WHERE exec_id = ? AND owner {self._null_eq()} ? "
                    "AND status NOT IN ('completed', 'cancelled')"
                ),
                (now, now, exec_id, expected_owner),
            )
            return bool(cur.rowcount == 1)

    def set_metadata(self, exec_id: str, metadata: dict[str, object]) -> None:
        with self._tx(immediate=True) as conn:
            row = conn.execute(
                self._sql("SELECT metadata FROM executions WHERE exec_id = ?"), (exec_id,)
            ).fetchone()
            merged = {**_unjson(row[0] if row else None), **metadata}
            conn.execute(
                self._sql("UPDATE executions SET metadata = ? WHERE exec_id = ?"),
                (_json(merged), exec_id),
            )

    def transition(
        self,
        exec_id: str,
        *,
        to: str,
        from_statuses: Sequence[str],
        expected_owner: str | None,
        now: float,
        error: str | None = None,
    ) -> bool:
        ended = now if to in ("completed", "failed", "cancelled") else None
        marks = ", ".join("?" for _ in from_statuses)
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    "UPDATE executions SET status = ?, owner = NULL, lease_until = NULL, "
                    "updated_at = ?, ended_at = ?, error = ? "
                    f"WHERE exec_id = ? AND owner {self._null_eq()} ? AND status IN ({marks}) "
                    "AND cancel_requested = 0"
                ),
                (to, now, ended, error, exec_id, expected_owner, *from_statuses),
            )
            return bool(cur.rowcount == 1)

    def set_run_id(self, exec_id: str, run_id: str, orchestrator: str) -> None:
        with self._tx() as conn:
            conn.execute(
                self._sql("UPDATE executions SET run_id = ?, orchestrator = ? WHERE exec_id = ?"),
                (run_id, orchestrator, exec_id),
            )

    # -- calls ---------------------------------------------------------------------------
    def calls(self, exec_id: str) -> list[CallRecord]:
        rows = self._x(
            f"SELECT {CALL_ROW} FROM calls WHERE exec_id = ? ORDER BY seq", (exec_id,)
        ).fetchall()
        return [_call(row) for row in rows]

    def commit_call(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        logs: Sequence[LogRecord],
        *,
        owner: str,
    ) -> bool:
        c, o = call, output
        params = (
            c.exec_id, c.key, c.seq, c.name, c.func, c.status, c.started_at, c.ended_at,
            c.run, c.kind, c.attempts, o.artifact_id if o else None, c.error, c.traceback,
            c.reused_from, _json(c.metadata), c.branch or None, c.pos, c.fingerprint,
            o.type_ref if o else None, o.serializer if o else None,
            o.content_hash if o else None, o.size if o else None, o.uri if o else None,
            o.inline if o else None, o.producer if o else None,
            c.exec_id, owner,
        )  # fmt: skip
        if not logs:
            # One statement is its own transaction: no BEGIN/COMMIT round trips.
            return bool(self._x(_INSERT_CALL, params).rowcount == 1)
        try:
            with self._tx() as conn:
                cur = conn.execute(self._sql(_INSERT_CALL), params)
                if cur.rowcount != 1:
                    raise _Rollback
                self._many(conn, self._sql(_INSERT_LOG), _log_params(logs))
        except _Rollback:
            return False
        return True

    def copy_calls(
        self, source: str, target: str, *, before_seq: int, overridden: Collection[str] = ()
    ) -> int:
        cols = CALL_ROW.replace("exec_id, ", "").replace(", reused_from", "")
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    f"INSERT INTO calls (exec_id, {cols}, reused_from) SELECT ?, {cols}, "
                    "COALESCE(reused_from, exec_id) FROM calls "
                    "WHERE exec_id = ? AND seq < ? AND status = 'completed'"
                ),
                (target, source, before_seq),
            )
            copied = int(cur.rowcount)
            keys = {
                key
                for (key,) in conn.execute(
                    self._sql(
                        "SELECT key FROM calls WHERE exec_id = ? AND seq < ? "
                        "AND status = 'completed'"
                    ),
                    (source, before_seq),
                ).fetchall()
            }
            self._copy_events(conn, source, target, keys - set(overridden))
            return copied

    # -- artifacts -----------------------------------------------------------------------
    def put_artifact(self, artifact: ArtifactRecord) -> None:
        with self._tx() as conn:
            conn.execute(self._sql(_INSERT_ARTIFACT), _artifact_params(artifact))

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        located = parse_call_output_id(artifact_id)
        if located is not None:
            row = self._x(
                f"SELECT {CALL_ROW} FROM calls WHERE exec_id = ? AND seq = ?", located
            ).fetchone()
            if row is None:
                return None
            call = _call(row)
            return call.output if call.output_artifact == artifact_id else None
        row = self._x(
            f"SELECT {ART_COLS} FROM artifacts WHERE artifact_id = ?", (artifact_id,)
        ).fetchone()
        return _artifact(row) if row else None

    def list_artifacts(self, exec_id: str, *, producer: str | None = None) -> list[ArtifactRecord]:
        where, params = "exec_id = ?", [exec_id]
        if producer is not None:
            where, params = where + " AND producer = ?", [*params, producer]
        rows = self._x(
            f"SELECT {ART_COLS_NO_INLINE} FROM artifacts WHERE {where} "
            "ORDER BY created_at, artifact_id",
            params,
        ).fetchall()
        found = [_artifact(r, with_inline=False) for r in rows]
        # Checkpoint outputs live in their call rows; only read those when they can match.
        if producer is None or producer in _CALL_PRODUCERS:
            for call in self.calls(exec_id):
                out = call.output
                mine = out is not None and call.reused_from is None
                if out is not None and mine and producer in (None, out.producer):
                    out.inline = None
                    found.append(out)
        found.sort(key=lambda a: (a.created_at, a.artifact_id))
        return found

    def find_artifact(self, exec_id: str, name: str) -> ArtifactRecord | None:
        row = self._x(
            f"SELECT {ART_COLS} FROM artifacts WHERE exec_id = ? AND name = ? "
            "ORDER BY version DESC LIMIT 1",
            (exec_id, name),
        ).fetchone()
        if row:
            return _artifact(row)
        row = self._x(
            f"SELECT {CALL_ROW} FROM calls WHERE exec_id = ? AND key = ? AND status = 'completed'",
            (exec_id, name),
        ).fetchone()
        return _call(row).output if row else None

    # -- waits ---------------------------------------------------------------------------
    def create_wait(self, wait: WaitRecord, *, owner: str) -> bool:
        w = wait
        params = (
            w.exec_id,
            w.key,
            w.name,
            w.seq,
            w.question,
            json.dumps(w.schema),
            w.created_at,
            w.status,
            w.timeout_at,
            json.dumps(w.default) if w.has_default else None,
            int(w.has_default),
            w.call_site,
            w.answered_at,
            w.value_artifact,
            _json(w.metadata),
            w.exec_id,
            owner,
        )
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    f"INSERT INTO waits ({WAIT_COLS}) SELECT {_marks(WAIT_COLS)} WHERE EXISTS "
                    "(SELECT 1 FROM executions WHERE exec_id = ? AND owner = ?) "
                    "ON CONFLICT (exec_id, key) DO NOTHING"
                ),
                params,
            )
            return bool(cur.rowcount == 1)

    def waits(self, exec_id: str) -> list[WaitRecord]:
        rows = self._x(
            f"SELECT {WAIT_COLS} FROM waits WHERE exec_id = ? ORDER BY seq", (exec_id,)
        ).fetchall()
        return [_wait(r) for r in rows]

    def pending_waits(self) -> list[WaitRecord]:
        rows = self._x(
            f"SELECT {', '.join('w.' + c.strip() for c in WAIT_COLS.split(','))} FROM waits w "
            "JOIN executions e ON e.exec_id = w.exec_id "
            "WHERE w.status = 'pending' AND e.status IN ('waiting', 'running') "
            "ORDER BY w.created_at",
        ).fetchall()
        return [_wait(r) for r in rows]

    def answer_wait(self, exec_id: str, key: str, value: ArtifactRecord, *, now: float) -> bool:
        try:
            with self._tx() as conn:
                cur = conn.execute(
                    self._sql(
                        "UPDATE waits SET status = 'answered', answered_at = ?, value_artifact = ? "
                        "WHERE exec_id = ? AND key = ? AND status = 'pending'"
                    ),
                    (now, value.artifact_id, exec_id, key),
                )
                if cur.rowcount != 1:
                    raise _Rollback
                conn.execute(self._sql(_INSERT_ARTIFACT), _artifact_params(value))
        except _Rollback:
            return False
        return True

    def copy_waits(self, source: str, target: str, *, before_seq: int) -> int:
        cols = WAIT_COLS.replace("exec_id, ", "")
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    f"INSERT INTO waits (exec_id, {cols}) SELECT ?, {cols} FROM waits "
                    "WHERE exec_id = ? AND seq < ? AND status = 'answered'"
                ),
                (target, source, before_seq),
            )
            return int(cur.rowcount)

    # -- logs ----------------------------------------------------------------------------
    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        if logs:
            with self._tx() as conn:
                self._many(conn, self._sql(_INSERT_LOG), _log_params(logs))

    def logs(self, exec_id: str) -> list[LogRecord]:
        rows = self._x(
            f"SELECT {LOG_COLS} FROM logs WHERE exec_id = ? ORDER BY ts", (exec_id,)
        ).fetchall()
        return [LogRecord(*r) for r in rows]

    # -- stacks and settings -------------------------------------------------------------
    def put_stack(self, stack: StackRecord, *, replace: bool = False) -> bool:
        s = stack
        params = (
            s.name,
            s.orchestrator,
            s.artifact_store,
            s.journal,
            s.registry,
            s.builder,
            json.dumps(s.settings),
            s.created_at,
            s.updated_at,
        )
        conflict = (
            "DO UPDATE SET orchestrator = excluded.orchestrator, "
            "artifact_store = excluded.artifact_store, journal = excluded.journal, "
            "registry = excluded.registry, builder = excluded.builder, "
            "settings = excluded.settings, updated_at = excluded.updated_at"
            if replace
            else "DO NOTHING"
        )
        with self._tx() as conn:
            cur = conn.execute(
                self._sql(
                    f"INSERT INTO stacks ({STACK_COLS}) VALUES ({_marks(STACK_COLS)}) "
                    f"ON CONFLICT (name) {conflict}"
                ),
                params,
            )
            return bool(cur.rowcount == 1)

    def get_stack(self, name: str) -> StackRecord | None:
        row = self._x(f"SELECT {STACK_COLS} FROM stacks WHERE name = ?", (name,)).fetchone()
        return _stack(row) if row else None

    def list_stacks(self) -> list[StackRecord]:
        rows = self._x(f"SELECT {STACK_COLS} FROM stacks ORDER BY name").fetchall()
        return [_stack(r) for r in rows]

    def delete_stack(self, name: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(self._sql("DELETE FROM stacks WHERE name = ?"), (name,))
            return bool(cur.rowcount == 1)

    def get_setting(self, key: str) -> str | None:
        row = self._x("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_setting(self, key: str, value: str | None) -> None:
        with self._tx() as conn:
            if value is None:
                conn.execute(self._sql("DELETE FROM settings WHERE key = ?"), (key,))
            else:
                conn.execute(
                    self._sql(
                        "INSERT INTO settings (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    ),
                    (key, value),
                )


def _stack(row: Sequence[Any]) -> StackRecord:
    r = list(row)
    r[6] = json.loads(r[6]) if r[6] else {}
    return StackRecord(*r)


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


class _Rollback(Exception):
    """Raised inside a transaction to roll it back without an error for the caller."""
