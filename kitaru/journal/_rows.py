"""The core tables' columns and rows, shared by the journal's SQL mixins.

Every statement is written once with `?` placeholders; `SqlHooks` names what the
dialect supplies (see `SqlJournal`, `SqliteJournal`, `PostgresJournal`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kitaru.journal import _records
from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    WaitRecord,
)

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import StackRecord

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


def _stack(row: Sequence[Any]) -> StackRecord:
    r = list(row)
    r[6] = json.loads(r[6]) if r[6] else {}
    return _records.StackRecord(*r)


class _Rollback(Exception):
    """Raised inside a transaction to roll it back without an error for the caller."""


class SqlHooks:
    """What the table mixins call on the journal; `SqlJournal` and its dialects supply it."""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        """One write statement, its own transaction: the number of rows it changed."""
        return int(self._x(sql, params).rowcount)

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _bulk(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a read that returns many (an execution's calls, which a replay
        or a resume reads in full): a dialect may fetch them in a cheaper form."""
        return list(self._x(sql, params).fetchall())

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def _null_eq(self) -> str:
        raise NotImplementedError

    if TYPE_CHECKING:  # (EventRows has it; a stub here could stand before it in the MRO)

        def _store_events(
            self, conn: Any, exec_id: str, events: Sequence[EventRecord], *, again: bool = False
        ) -> None: ...
