"""Journal-wide counts, for the server's `/metrics` (kitaru/server/_metrics.py).

Every number is read from the journal, so server replicas sharing one journal report
the same values and none of them counts what another did twice:

- executions by flow and status: one `GROUP BY` (the running ones are listed, for the
  caller to tell crashed ones apart as `executions list` does);
- pending waits by flow, with the oldest one's time;
- checkpoint calls by kind and status, with their summed duration and a histogram of
  durations (one conditional count per bucket), and model usage (`kitaru.llm()`, the
  harness adapters: calls, input and output tokens, estimated cost by provider and
  model, from the call metadata they record). Calls are the journal's largest table,
  so these are folded (`Folded`): a finished execution's calls are read once by each
  process that keeps the `Folded`, and a pass reads only what may have changed.

Calls count if they ran in their own execution: a replay's copies of its source's
calls ran once, in the source. A call row is replaced when the same call runs again (a
retry on resume), so a call that failed and then completed counts once, as completed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

# Upper bounds of the checkpoint duration histogram, in seconds: a fast tool call to a
# long model call or a human-paced step.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip


# The counts themselves are dataclasses in `_totals`, defined on first use: opening a
# journal (`kitaru executions list`) reads no stats.
_TOTALS = frozenset({"CallCounts", "ModelUsage", "CallTotals", "Folded", "JournalStats"})
__all__ = [
    "CHUNK",
    "DURATION_BUCKETS",
    "FOLD_MARGIN",
    "SETTLED",
    "CallCounts",
    "CallTotals",
    "Folded",
    "JournalStats",
    "ModelUsage",
    "StatsRows",
]

if TYPE_CHECKING:
    from kitaru.journal._totals import CallCounts, CallTotals, Folded, JournalStats, ModelUsage


def __getattr__(name: str) -> Any:
    if name not in _TOTALS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from kitaru.journal import _totals

    value = globals()[name] = getattr(_totals, name)
    return value


# Completed and cancelled executions take no more calls; failed ones may be resumed.
SETTLED = ("completed", "cancelled")
FOLD_MARGIN = 600.0
# exec_ids per `IN (...)` list.
CHUNK = 500


_DURATION = "(c.ended_at - c.started_at)"
_CALLS = (
    "SELECT {by}, c.kind, c.status, COUNT(*), "
    + f"SUM({_DURATION}), "
    + ", ".join(f"SUM(CASE WHEN {_DURATION} <= {b!r} THEN 1 ELSE 0 END)" for b in DURATION_BUCKETS)
    + " FROM calls c {join} WHERE c.reused_from IS NULL AND {where} GROUP BY 1, 2, 3"
)
# Calls of the executions created in a time range (the created_at index), optionally
# only the settled ones; or of a list of executions (the calls' primary key).
_IN_RANGE = "JOIN executions e ON e.exec_id = c.exec_id"
_RANGE = "e.created_at >= ? AND e.created_at < ?"
_SETTLED = f"status IN ({', '.join(repr(s) for s in SETTLED)})"
# Only rows whose metadata names token counts are parsed as JSON.
_USAGE_ROWS = "c.metadata LIKE '%\"input_tokens\"%'"


class StatsRows:
    """Mixed into `SqlJournal`, which supplies `_x`; the dialects supply the JSON reads."""

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    # The metadata column as JSON (`{col}` its name), and a field of it as text or as a
    # number (NULL when it is not one: `kitaru.log()` lets a flow write any value under
    # any name).
    JSON_DOC: str = "{col}"

    def _json_text(self, doc: str, key: str) -> str:
        raise NotImplementedError

    def _json_number(self, doc: str, key: str) -> str:
        raise NotImplementedError

    def journal_stats(
        self, folded: Folded | None = None, *, now: float | None = None
    ) -> JournalStats:
        """The journal's counts; pass the same `folded` again to read only what changed
        since (see `Folded`)."""
        from kitaru.journal._totals import Folded, JournalStats

        stats = JournalStats()
        stats.executions = [
            (flow, status, int(n))
            for flow, status, n in self._x(
                "SELECT flow, status, COUNT(*) FROM executions WHERE status <> 'running' "
                "GROUP BY flow, status"
            ).fetchall()
        ]
        stats.running = [
            (flow, owner, lease_until)
            for flow, owner, lease_until in self._x(
                "SELECT flow, owner, lease_until FROM executions WHERE status = 'running'"
            ).fetchall()
        ]
        stats.pending_waits = [
            (flow, int(n), float(oldest))
            for flow, n, oldest in self._x(
                "SELECT e.flow, COUNT(*), MIN(w.created_at) FROM waits w "
                "JOIN executions e ON e.exec_id = w.exec_id "
                "WHERE w.status = 'pending' AND e.status IN ('waiting', 'running') "
                "GROUP BY e.flow"
            ).fetchall()
        ]
        stats.calls = self._fold(folded or Folded(), time.time() if now is None else now)
        return stats

    def _fold(self, folded: Folded, now: float) -> CallTotals:
        """Fold what settled since the last pass; return the totals of every call."""
        from kitaru.journal._totals import CallTotals

        start = float("-inf") if folded.horizon is None else folded.horizon
        horizon = max(start, now - FOLD_MARGIN)
        if horizon > start:
            # Finished before the horizon too, so that one finishing between these two
            # statements is not in the first and is in the second (clocks within
            # FOLD_MARGIN of each other).
            old = f"e.{_SETTLED} AND e.updated_at < ?"
            settled = self._totals(_IN_RANGE, f"{_RANGE} AND {old}", (start, horizon, horizon))
            unsettled = self._x(
                f"SELECT exec_id FROM executions e WHERE {_RANGE} AND NOT ({old})",
                (start, horizon, horizon),
            ).fetchall()
            # Kept only once both reads succeeded: a failed pass folds nothing twice.
            folded.totals.add(settled[""])
            folded.open.update(exec_id for (exec_id,) in unsettled)
            folded.horizon = horizon
        live = self._totals(_IN_RANGE, _RANGE, (horizon, float("inf")))[""]
        if folded.open:
            self._pass_open(folded, live)
        out = CallTotals()
        out.add(folded.totals)
        out.add(live)
        return out

    def _pass_open(self, folded: Folded, live: CallTotals) -> None:
        """Open executions: fold the ones that finished, add the others to `live` (read
        again only if they run or changed)."""
        from kitaru.journal._totals import CallTotals

        unsettled: dict[str, tuple[str, float]] = {
            exec_id: (status, updated_at)
            for exec_id, status, updated_at in self._x(
                f"SELECT exec_id, status, updated_at FROM executions WHERE NOT {_SETTLED}"
            ).fetchall()
        }
        finished, unread = [], []
        for exec_id in sorted(folded.open):
            now_is = unsettled.get(exec_id)
            kept = folded.idle.get(exec_id)
            if now_is is None:  # finished (or deleted): its calls are final
                finished.append(exec_id)
            elif kept is not None and kept[0] == now_is[1] and now_is[0] != "running":
                pass  # in idle_sum
            else:
                unread.append(exec_id)
        for chunk in _chunks(finished):
            folded.totals.add(self._totals("", _ids(chunk), chunk)[""])
            folded.open.difference_update(chunk)
            for exec_id in chunk:
                folded.forget_idle(exec_id)
        for chunk in _chunks(unread):
            each = self._totals("", _ids(chunk), chunk, each=True)
            for exec_id in chunk:
                totals = each.get(exec_id, CallTotals())
                folded.forget_idle(exec_id)
                status, updated_at = unsettled[exec_id]
                if status == "running":
                    live.add(totals)
                else:
                    folded.idle[exec_id] = (updated_at, totals)
                    folded.idle_sum.add(totals)
        live.add(folded.idle_sum)

    def _totals(
        self, join: str, where: str, params: Sequence[Any], *, each: bool = False
    ) -> dict[str, CallTotals]:
        """Totals of the calls `where` selects: of each execution, or all under ""."""
        from kitaru.journal._totals import CallCounts, CallTotals, ModelUsage

        out: dict[str, CallTotals] = {}
        by = "c.exec_id" if each else "''"
        for exec_id, kind, status, n, seconds, *buckets in self._x(
            _CALLS.format(by=by, join=join, where=where), params
        ).fetchall():
            out.setdefault(exec_id, CallTotals()).calls[kind, status] = CallCounts(
                kind, status, int(n), float(seconds or 0), [int(b) for b in buckets]
            )
        text, number = self._json_text, self._json_number
        doc = self.JSON_DOC.format(col="c.metadata")
        for exec_id, provider, model, n, tokens_in, tokens_out, cost in self._x(
            f"SELECT x, {text('m', 'provider')}, {text('m', 'model')}, COUNT(*), "
            f"SUM({number('m', 'input_tokens')}), SUM({number('m', 'output_tokens')}), "
            f"SUM({number('m', 'cost_usd')}) "
            f"FROM (SELECT {by} AS x, {doc} AS m FROM calls c {join} WHERE "
            f"c.reused_from IS NULL AND {_USAGE_ROWS} AND {where}) AS usage GROUP BY 1, 2, 3",
            params,
        ).fetchall():
            key = (provider or "", model or "")
            out.setdefault(exec_id, CallTotals()).models[key] = ModelUsage(
                *key, int(n), int(tokens_in or 0), int(tokens_out or 0), float(cost or 0)
            )
        return out if each else {"": out.get("", CallTotals())}


def _chunks(exec_ids: list[str]) -> list[list[str]]:
    return [exec_ids[at : at + CHUNK] for at in range(0, len(exec_ids), CHUNK)]


def _ids(exec_ids: list[str]) -> str:
    return f"c.exec_id IN ({', '.join('?' for _ in exec_ids)})"
