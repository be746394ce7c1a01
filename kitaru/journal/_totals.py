"""What `journal_stats` (kitaru/journal/_stats.py) returns: counts of executions, waits,
checkpoint calls and model usage, and the `Folded` totals a process keeps between passes.
Imported on first use: opening a journal defines none of these classes."""

from __future__ import annotations

from dataclasses import dataclass, field


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
class CallTotals:
    """Checkpoint calls and model usage of a set of executions; totals of two disjoint
    sets add up."""

    calls: dict[tuple[str, str], CallCounts] = field(default_factory=dict)
    models: dict[tuple[str, str], ModelUsage] = field(default_factory=dict)

    def add(self, other: CallTotals, sign: int = 1) -> None:
        """Add `other` (with sign -1: take it away again)."""
        for key, c in other.calls.items():
            mine = self.calls.get(key)
            if mine is None:
                mine = self.calls[key] = CallCounts(c.kind, c.status, 0, 0.0, [0] * len(c.buckets))
            mine.count += sign * c.count
            mine.seconds += sign * c.seconds
            mine.buckets = [a + sign * b for a, b in zip(mine.buckets, c.buckets, strict=True)]
        for key, m in other.models.items():
            had = self.models.get(key)
            if had is None:
                had = self.models[key] = ModelUsage(m.provider, m.model, 0, 0, 0, 0.0)
            had.calls += sign * m.calls
            had.input_tokens += sign * m.input_tokens
            had.output_tokens += sign * m.output_tokens
            had.cost_usd += sign * m.cost_usd


@dataclass(slots=True)
class Folded:
    """Call totals one process has already read, so that it reads them only once.

    A completed or cancelled execution never gets another call (no run claims it, and
    every call commit is guarded by the lease it released), so its calls are read once
    and added to `totals`. Executions are folded by creation time, up to `horizon`,
    which trails the clock by FOLD_MARGIN so that a client whose clock is behind still
    lands after it; those not finished then (or finished after it) are kept in `open`
    until they finish. An
    open execution nobody runs (failed, waiting, queued) takes no call until a run takes
    its lease, which changes its `updated_at`: its totals are kept in `idle` with that
    time (and summed in `idle_sum`) and read again only when it changes. What a pass reads is what changed:
    executions created in the last FOLD_MARGIN, the running ones, and the ones whose
    status changed since the last pass."""

    horizon: float | None = None
    totals: CallTotals = field(default_factory=CallTotals)
    open: set[str] = field(default_factory=set)
    idle: dict[str, tuple[float, CallTotals]] = field(default_factory=dict)
    idle_sum: CallTotals = field(default_factory=CallTotals)

    def forget_idle(self, exec_id: str) -> None:
        kept = self.idle.pop(exec_id, None)
        if kept is not None:
            self.idle_sum.add(kept[1], -1)


@dataclass(slots=True)
class JournalStats:
    # (flow, status, count) for every status but `running`.
    executions: list[tuple[str, str, int]] = field(default_factory=list)
    # (flow, owner, lease_until) of each running execution: the caller tells crashed apart.
    running: list[tuple[str, str | None, float | None]] = field(default_factory=list)
    calls: CallTotals = field(default_factory=CallTotals)
    # (flow, count, oldest created_at)
    pending_waits: list[tuple[str, int, float]] = field(default_factory=list)
