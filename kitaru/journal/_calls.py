"""Checkpoint calls, their logs and artifacts in the SQL journals.

A checkpoint call's output lives in the call's row (one row per commit on the hot
path); other artifacts (inputs, saves, wait values) in the artifacts table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from kitaru.journal._records import ArtifactRecord, CallRecord, LogRecord, parse_call_output_id
from kitaru.journal._rows import (
    _CALL_PRODUCERS,
    _INSERT_ARTIFACT,
    _INSERT_CALL,
    _INSERT_LOG,
    ART_COLS,
    ART_COLS_NO_INLINE,
    CALL_ROW,
    LOG_COLS,
    SqlHooks,
    _artifact,
    _artifact_params,
    _call,
    _json,
    _log_params,
    _Rollback,
)


class CallRows(SqlHooks):
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    if TYPE_CHECKING:  # EventRows supplies it; a stub here would shadow it in SqlJournal

        def _copy_events(
            self, conn: Any, source: str, target: str, before_seq: int, overridden: Collection[str]
        ) -> None: ...

    # -- calls ---------------------------------------------------------------------------
    def calls(self, exec_id: str) -> list[CallRecord]:
        rows = self._bulk(
            f"SELECT {CALL_ROW} FROM calls WHERE exec_id = ? ORDER BY seq", (exec_id,)
        )
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
            return self._count(_INSERT_CALL, params) == 1
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
            self._copy_events(conn, source, target, before_seq, overridden)
            return int(cur.rowcount)

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
