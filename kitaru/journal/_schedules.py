"""Schedules in the SQL journals (schema version 9).

A schedule row holds its next tick. Firing a tick is one transaction: move `next_tick`
from the value the scheduler read to the one after (a compare-and-set: of two schedulers
that read the same value, one moves it and the other changes nothing), insert a
`schedule_runs` row per (schedule, tick) (its primary key refuses a tick twice, whatever
happened to `next_tick`), and insert the tick's execution. Either all of it is stored or
none: a tick never has a run without its execution, nor an execution without its run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kitaru.journal import _records
from kitaru.journal._records import ArtifactRecord, ExecutionRecord
from kitaru.journal._rows import _Rollback

SCHEDULE_COLS = (
    "name, flow, target, cron, timezone, args, catchup, paused, next_tick, created_at, updated_at"
)
RUN_COLS = "schedule, tick, status, exec_id, error, by, created_at"


# The schedule rows are defined with the other rows about where, when and by whom
# executions run (`_fleet_records`), on first use.
__all__ = ["RUN_COLS", "SCHEDULE_COLS", "ScheduleRecord", "ScheduleRows", "ScheduleRun"]

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import ScheduleRecord, ScheduleRun


def __getattr__(name: str) -> Any:
    if name not in ("ScheduleRecord", "ScheduleRun"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = globals()[name] = getattr(_records, name)
    return value


def _schedule(row: Sequence[Any]) -> ScheduleRecord:
    name, flow, target, cron, tz, args, catchup, paused, next_tick, created, updated = row
    return _records.ScheduleRecord(
        name, flow, json.loads(target), cron, tz, json.loads(args), catchup, next_tick,
        created, updated, bool(paused),
    )  # fmt: skip


class ScheduleRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def _insert_execution(
        self, conn: Any, execution: ExecutionRecord, inputs: Sequence[ArtifactRecord]
    ) -> str:
        raise NotImplementedError

    def put_schedule(self, s: ScheduleRecord) -> bool:
        """Insert a new schedule; False when one of that name exists."""
        cur = self._x(
            f"INSERT INTO schedules ({SCHEDULE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING",
            (
                s.name, s.flow, json.dumps(s.target), s.cron, s.timezone, json.dumps(s.args),
                s.catchup, int(s.paused), s.next_tick, s.created_at, s.updated_at,
            ),
        )  # fmt: skip
        return bool(cur.rowcount == 1)

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        row = self._x(f"SELECT {SCHEDULE_COLS} FROM schedules WHERE name = ?", (name,)).fetchone()
        return _schedule(row) if row else None

    def list_schedules(self) -> list[ScheduleRecord]:
        rows = self._x(f"SELECT {SCHEDULE_COLS} FROM schedules ORDER BY name").fetchall()
        return [_schedule(r) for r in rows]

    def due_schedules(self, now: float) -> list[ScheduleRecord]:
        rows = self._x(
            f"SELECT {SCHEDULE_COLS} FROM schedules WHERE paused = 0 AND next_tick <= ? "
            "ORDER BY next_tick",
            (now,),
        ).fetchall()
        return [_schedule(r) for r in rows]

    def pause_schedule(
        self, name: str, *, paused: bool, next_tick: float | None, now: float
    ) -> bool:
        """Pause or resume; a resume sets the next tick (ticks missed while paused are
        not owed)."""
        cur = self._x(
            "UPDATE schedules SET paused = ?, next_tick = COALESCE(?, next_tick), "
            "updated_at = ? WHERE name = ?",
            (int(paused), next_tick, now, name),
        )
        return bool(cur.rowcount == 1)

    def delete_schedule(self, name: str) -> bool:
        with self._tx(immediate=True) as conn:
            cur = conn.execute(self._sql("DELETE FROM schedules WHERE name = ?"), (name,))
            conn.execute(self._sql("DELETE FROM schedule_runs WHERE schedule = ?"), (name,))
            return bool(cur.rowcount == 1)

    def fire_schedule(
        self,
        name: str,
        *,
        expected_next: float,
        next_tick: float,
        runs: Sequence[ScheduleRun],
        executions: Sequence[tuple[ExecutionRecord, Sequence[ArtifactRecord]]] = (),
    ) -> bool:
        """Claim the ticks of `runs` and store their executions, all or nothing; False
        when another scheduler claimed them first (or the schedule was paused or deleted)."""
        try:
            with self._tx(immediate=True) as conn:
                cur = conn.execute(
                    self._sql(
                        "UPDATE schedules SET next_tick = ? "
                        "WHERE name = ? AND next_tick = ? AND paused = 0"
                    ),
                    (next_tick, name, expected_next),
                )
                if cur.rowcount != 1:
                    raise _Rollback
                for r in runs:
                    cur = conn.execute(
                        self._sql(
                            f"INSERT INTO schedule_runs ({RUN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT (schedule, tick) DO NOTHING"
                        ),
                        (r.schedule, r.tick, r.status, r.exec_id, r.error, r.by, r.created_at),
                    )
                    if cur.rowcount != 1:
                        raise _Rollback
                for execution, inputs in executions:
                    self._insert_execution(conn, execution, inputs)
        except _Rollback:
            return False
        return True

    def end_schedule_run(
        self, name: str, tick: float, *, status: str, exec_id: str | None, error: str | None
    ) -> None:
        """What became of a claimed tick whose execution started after the claim (an
        invocation of a deployment)."""
        self._x(
            "UPDATE schedule_runs SET status = ?, exec_id = ?, error = ? "
            "WHERE schedule = ? AND tick = ?",
            (status, exec_id, error, name, tick),
        )

    def stalled_schedule_runs(self, before: float) -> list[ScheduleRun]:
        """Ticks left `starting` since before `before`: claimed by a scheduler that has
        not said how their invocation went (it died, or is slow)."""
        rows = self._x(
            f"SELECT {RUN_COLS} FROM schedule_runs WHERE status = 'starting' AND created_at < ? "
            "ORDER BY created_at LIMIT 100",
            (before,),
        ).fetchall()
        return [_records.ScheduleRun(r[0], r[1], r[2], r[6], r[3], r[4], r[5]) for r in rows]

    def retake_schedule_run(
        self, name: str, tick: float, *, taken_at: float, now: float, by: str
    ) -> bool:
        """Take over a `starting` tick last taken at `taken_at` (compare-and-set): of
        schedulers that found it stalled, one gets True."""
        cur = self._x(
            "UPDATE schedule_runs SET created_at = ?, by = ? "
            "WHERE schedule = ? AND tick = ? AND status = 'starting' AND created_at = ?",
            (now, by, name, tick, taken_at),
        )
        return bool(cur.rowcount == 1)

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[ScheduleRun]:
        """Newest first, each with its execution's status now."""
        rows = self._x(
            "SELECT r.schedule, r.tick, r.status, r.exec_id, r.error, r.by, r.created_at, "
            "e.status FROM schedule_runs r LEFT JOIN executions e ON e.exec_id = r.exec_id "
            "WHERE r.schedule = ? ORDER BY r.tick DESC LIMIT ?",
            (name, limit),
        ).fetchall()
        return [_records.ScheduleRun(r[0], r[1], r[2], r[6], r[3], r[4], r[5], r[7]) for r in rows]
