"""Journal-wide counts, for the server's `/metrics` (kitaru/server/_metrics.py).

Every number is read from the journal, so server replicas sharing one journal report
the same values and none of them counts what another did twice. Each is one aggregate
query that the database answers in a pass over a table, with no per-row work in
Python (the running executions excepted: `executions list` decides which of them
crashed, and there are few):

- executions by flow and status (`GROUP BY`);
- checkpoint calls by kind and status, with their summed duration and a histogram of
  durations (one conditional count per bucket), over the calls that ran in their own
  execution: a replay's copies of its source's calls ran once, in the source;
- pending waits by flow, with the oldest one's time;
- model usage (`kitaru.llm()`, the harness adapters): calls, input and output tokens
  and estimated cost by provider and model, read from the call metadata they record.

A call row is replaced when the same call runs again (a retry on resume), so calls
count as the journal keeps them: a call that failed and then completed counts once,
as completed. Deleting executions lowers the totals (Prometheus takes it as a reset).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Upper bounds of the checkpoint duration histogram, in seconds: a fast tool call to a
# long model call or a human-paced step.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip


@dataclass(slots=True)
class CallCounts:
    kind: str
    status: str
    count: int
    seconds: float
    # Calls at most as long as each of DURATION_BUCKETS (cumulative, as Prometheus wants).
    buckets: list[int]


@dataclass(slots=True)
class ModelUsage:
    provider: str
    model: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


@dataclass(slots=True)
class JournalStats:
    # (flow, status, count) for every status but `running`.
    executions: list[tuple[str, str, int]] = field(default_factory=list)
    # (flow, owner, lease_until) of each running execution: the caller tells crashed apart.
    running: list[tuple[str, str | None, float | None]] = field(default_factory=list)
    calls: list[CallCounts] = field(default_factory=list)
    # (flow, count, oldest created_at)
    pending_waits: list[tuple[str, int, float]] = field(default_factory=list)
    models: list[ModelUsage] = field(default_factory=list)


_DURATION = "(ended_at - started_at)"
_CALLS = (
    f"SELECT kind, status, COUNT(*), SUM({_DURATION}), "
    + ", ".join(f"SUM(CASE WHEN {_DURATION} <= {b!r} THEN 1 ELSE 0 END)" for b in DURATION_BUCKETS)
    + " FROM calls WHERE reused_from IS NULL GROUP BY kind, status"
)
# Only rows whose metadata names token counts are parsed as JSON.
_USAGE_ROWS = "reused_from IS NULL AND metadata LIKE '%\"input_tokens\"%'"


class StatsRows:
    """Mixed into `SqlJournal`, which supplies `_x`; the dialects supply the JSON reads."""

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    # JSON of the metadata column, and a field of it as text or as a number (NULL when it
    # is not one: `kitaru.log()` lets a flow write any value under any name).
    JSON_DOC: str = "metadata"

    def _json_text(self, doc: str, key: str) -> str:
        raise NotImplementedError

    def _json_number(self, doc: str, key: str) -> str:
        raise NotImplementedError

    def journal_stats(self) -> JournalStats:
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
        for kind, status, n, seconds, *buckets in self._x(_CALLS).fetchall():
            stats.calls.append(
                CallCounts(kind, status, int(n), float(seconds or 0), [int(b) for b in buckets])
            )
        stats.pending_waits = [
            (flow, int(n), float(oldest))
            for flow, n, oldest in self._x(
                "SELECT e.flow, COUNT(*), MIN(w.created_at) FROM waits w "
                "JOIN executions e ON e.exec_id = w.exec_id "
                "WHERE w.status = 'pending' AND e.status IN ('waiting', 'running') "
                "GROUP BY e.flow"
            ).fetchall()
        ]
        text, number = self._json_text, self._json_number
        for provider, model, n, tokens_in, tokens_out, cost in self._x(
            f"SELECT {text('m', 'provider')}, {text('m', 'model')}, COUNT(*), "
            f"SUM({number('m', 'input_tokens')}), SUM({number('m', 'output_tokens')}), "
            f"SUM({number('m', 'cost_usd')}) "
            f"FROM (SELECT {self.JSON_DOC} AS m FROM calls WHERE {_USAGE_ROWS}) AS usage "
            "GROUP BY 1, 2"
        ).fetchall():
            stats.models.append(
                ModelUsage(
                    provider or "",
                    model or "",
                    int(n),
                    int(tokens_in or 0),
                    int(tokens_out or 0),
                    float(cost or 0),
                )
            )
        return stats
