"""Waits in the SQL journals: a paused execution's questions and their answers."""

from __future__ import annotations

import json

from kitaru.journal._records import ArtifactRecord, WaitRecord
from kitaru.journal._rows import (
    _INSERT_ARTIFACT,
    WAIT_COLS,
    SqlHooks,
    _artifact_params,
    _json,
    _marks,
    _Rollback,
    _wait,
)


class WaitRows(SqlHooks):
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

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
