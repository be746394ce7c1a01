"""Stacks and settings in the SQL journals."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from kitaru.journal._rows import STACK_COLS, SqlHooks, _marks, _stack

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import StackRecord


class StackRows(SqlHooks):
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

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
