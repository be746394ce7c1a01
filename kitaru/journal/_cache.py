"""The calls a checkpoint with `cache=True` may hand to later executions (schema 9).

A completed call of such a checkpoint gets a row in `call_cache` keyed by its function's
source hash and its input key (kitaru/_cache.py makes both); a later call with the same
two finds the newest row no older than its ttl, and reads the call it names (its output
sits in the calls table). Rows are written only for completed calls and the lookup reads
only calls still completed, so a failed call is never handed on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kitaru.journal._records import CallRecord
from kitaru.journal._rows import CALL_ROW, _call


class CacheRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def remember_call(
        self, source_hash: str, input_key: str, *, exec_id: str, seq: int, now: float
    ) -> None:
        self._x(
            "INSERT INTO call_cache (source_hash, input_key, created_at, exec_id, seq) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (source_hash, input_key, now, exec_id, seq),
        )

    def find_cached_call(
        self, source_hash: str, input_key: str, *, since: float
    ) -> CallRecord | None:
        cols = ", ".join(f"c.{c.strip()}" for c in CALL_ROW.split(","))
        row = self._x(
            f"SELECT {cols} FROM call_cache k JOIN calls c "
            "ON c.exec_id = k.exec_id AND c.seq = k.seq "
            "WHERE k.source_hash = ? AND k.input_key = ? AND k.created_at >= ? "
            "AND c.status = 'completed' AND c.reused_from IS NULL "
            "ORDER BY k.created_at DESC LIMIT 1",
            (source_hash, input_key, since),
        ).fetchone()
        return _call(row) if row is not None else None
