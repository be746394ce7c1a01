"""Executions in the SQL journals: start, lease, heartbeat, finish, cancel."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from kitaru.journal._records import ArtifactRecord, EventRecord, ExecutionRecord
from kitaru.journal._rows import (
    _INSERT_ARTIFACT,
    _INSERT_EXECUTION,
    EXEC_COLS,
    SqlHooks,
    _artifact_params,
    _execution,
    _json,
    _Rollback,
    _unjson,
)


class ExecutionRows(SqlHooks):
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

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
        events: Sequence[EventRecord] = (),
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
                if events:
                    # The run's last feed entries land with its status: a reader that
                    # sees the execution ended has seen every entry (the UPDATE above
                    # holds the row, as append_events' lease check does).
                    self._store_events(conn, exec_id, events)
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
