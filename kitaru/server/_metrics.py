"""`/metrics`: the journal's state in the Prometheus text format.

A scrape, in order:

1. The guard has checked the token (a read, write or admin token; never a run token)
   before the route runs (kitaru/server/_guard.py, routes/_metrics.py).
2. The last page is served at once. If it is older than `interval` seconds, a
   background thread reads the journal again for the scrapes after this one: however
   many Prometheus servers scrape however often, each replica reads the journal at most
   once per interval, and no scrape waits for the read (only the first one, which has
   no page yet).
3. A read is a handful of aggregate queries (kitaru/journal/_stats.py, the queue
   counts of kitaru/journal/_queues.py) on a connection of this module's own, so it
   never holds the connection that runs commit through. Their cost grows with the
   journal (a pass over the calls table; docs/server.md has the measured figures).

Every value here comes from the journal, none from counters in this process (the event
streams' own counts, `kitaru_sse_*`, are added by routes/_metrics.py): replicas
sharing a journal all report the same journal-wide numbers (aggregate across them with
`max without (instance)`, never `sum`), and a restart loses nothing. Labels are flow,
queue, kind, status, provider and model names, all of which a read token sees through
the API already; no argument, output, error, owner or secret is ever a label or value.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kitaru import _lease
from kitaru.journal import QueueRecord, WorkerRecord, connect_journal
from kitaru.journal._sql import SqlJournal
from kitaru.journal._stats import DURATION_BUCKETS, Folded, JournalStats

STATUSES = ("queued", "running", "waiting", "completed", "failed", "crashed", "cancelled")
# A worker reports itself every 5 s (kitaru/_worker.py); one not heard from for this
# long is `silent`: killed, or cut off from the journal.
WORKER_SILENT_AFTER = 30.0
MAX_LABEL = 200


def _label(value: str) -> str:
    return value[:MAX_LABEL]


class JournalCollector(Collector):
    """Renders one reading of the journal as metric families."""

    def __init__(self, journal: SqlJournal) -> None:
        self.journal = journal
        # Calls of finished executions, read once (kitaru/journal/_stats.py).
        self.folded = Folded()

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        now = time.time()
        stats = self.journal.journal_stats(self.folded, now=now)
        queues = self.journal.queue_counts(now)
        limits = self.journal.list_queues()
        workers = self.journal.list_workers()
        yield from _executions(stats)
        yield from _calls(stats)
        yield from _waits(stats, now)
        yield from _queues(queues, limits, now)
        yield _workers(workers, now)
        yield from _models(stats)
        took = GaugeMetricFamily(
            "kitaru_metrics_journal_read_seconds",
            "Time this replica took to read the journal for this page.",
        )
        took.add_metric([], time.perf_counter() - started)
        yield took


def _executions(stats: JournalStats) -> Iterator[Metric]:
    counts: dict[tuple[str, str], int] = {}
    for flow, status, n in stats.executions:
        counts[flow, status] = counts.get((flow, status), 0) + n
    for flow, owner, lease_until in stats.running:
        status = _lease.effective_status("running", owner, lease_until)
        counts[flow, status] = counts.get((flow, status), 0) + 1
    family = GaugeMetricFamily(
        "kitaru_executions",
        "Executions in the journal by flow and status, as `kitaru executions list` shows "
        "them (running with its owner gone: crashed).",
        labels=["flow", "status"],
    )
    for flow in sorted({flow for flow, _ in counts}):
        for status in STATUSES:
            family.add_metric([_label(flow), status], counts.get((flow, status), 0))
    yield family


def _calls(stats: JournalStats) -> Iterator[Metric]:
    total = CounterMetricFamily(
        "kitaru_checkpoint_calls",
        "Checkpoint calls recorded in the journal (model requests and tool calls "
        "included) by kind and last status; a replay's reused calls are not counted.",
        labels=["kind", "status"],
    )
    durations = HistogramMetricFamily(
        "kitaru_checkpoint_call_duration_seconds",
        "Duration of the checkpoint calls recorded in the journal, by kind.",
        labels=["kind"],
    )
    by_kind: dict[str, tuple[list[int], int, float]] = {}
    for c in stats.calls.calls.values():
        total.add_metric([_label(c.kind), _label(c.status)], c.count)
        buckets, count, seconds = by_kind.get(c.kind, ([0] * len(DURATION_BUCKETS), 0, 0.0))
        by_kind[c.kind] = (
            [a + b for a, b in zip(buckets, c.buckets, strict=True)],
            count + c.count,
            seconds + c.seconds,
        )
    for kind, (buckets, count, seconds) in sorted(by_kind.items()):
        pairs = [(repr(b), n) for b, n in zip(DURATION_BUCKETS, buckets, strict=True)]
        durations.add_metric([_label(kind)], [*pairs, ("+Inf", count)], seconds)
    yield total
    yield durations


def _waits(stats: JournalStats, now: float) -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        "kitaru_waits_pending",
        "Waits that have no answer yet, by flow.",
        labels=["flow"],
    )
    oldest = GaugeMetricFamily(
        "kitaru_waits_oldest_pending_seconds",
        "How long the oldest unanswered wait of the flow has waited.",
        labels=["flow"],
    )
    for flow, n, created_at in stats.pending_waits:
        pending.add_metric([_label(flow)], n)
        oldest.add_metric([_label(flow)], max(0.0, now - created_at))
    yield pending
    yield oldest


def _queues(
    queues: dict[str, dict[str, Any]], limits: list[QueueRecord], now: float
) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "kitaru_queue_depth", "Executions waiting in the queue for a worker.", labels=["queue"]
    )
    running = GaugeMetricFamily(
        "kitaru_queue_running",
        "Executions of the queue running under a worker's live lease.",
        labels=["queue"],
    )
    oldest = GaugeMetricFamily(
        "kitaru_queue_oldest_waiting_seconds",
        "How long the queue's longest-waiting execution has waited (0: none waits).",
        labels=["queue"],
    )
    started = GaugeMetricFamily(
        "kitaru_queue_claims_last_minute",
        "Executions workers took from the queue in the last 60 s.",
        labels=["queue"],
    )
    concurrency = GaugeMetricFamily(
        "kitaru_queue_concurrency_limit",
        "The queue's concurrency limit, for queues that have one.",
        labels=["queue"],
    )
    names = sorted({*queues, *(q.name for q in limits)})
    for name in names:
        c = queues.get(name, {})
        first = c.get("oldest")
        depth.add_metric([name], c.get("depth", 0))
        running.add_metric([name], c.get("running", 0))
        started.add_metric([name], c.get("started", 0))
        oldest.add_metric([name], max(0.0, now - first) if first else 0.0)
    for q in limits:
        if q.concurrency is not None:
            concurrency.add_metric([q.name], q.concurrency)
    yield from (depth, running, oldest, started, concurrency)


def _workers(workers: list[WorkerRecord], now: float) -> Metric:
    family = GaugeMetricFamily(
        "kitaru_workers",
        "Workers that have not stopped, by queue they serve and state: live (reported in "
        f"the last {WORKER_SILENT_AFTER:.0f} s) or silent.",
        labels=["queue", "state"],
    )
    counts: dict[tuple[str, str], int] = {}
    for w in workers:
        if w.stopped_at is not None:
            continue
        state = "live" if now - w.seen_at <= WORKER_SILENT_AFTER else "silent"
        for queue in w.queues:
            counts[queue, state] = counts.get((queue, state), 0) + 1
    for queue in sorted({q for q, _ in counts}):
        for state in ("live", "silent"):
            family.add_metric([_label(queue), state], counts.get((queue, state), 0))
    return family


def _models(stats: JournalStats) -> Iterator[Metric]:
    labels = ["provider", "model"]
    calls = CounterMetricFamily(
        "kitaru_llm_calls",
        "Model calls recorded with their usage (kitaru.llm() and the harness adapters).",
        labels=labels,
    )
    tokens = CounterMetricFamily(
        "kitaru_llm_tokens",
        "Tokens the model calls used, by type (input or output).",
        labels=[*labels, "type"],
    )
    cost = CounterMetricFamily(
        "kitaru_llm_cost_usd",
        "Estimated cost of the model calls in USD, from list prices (docs/llm.md); "
        "calls of a model without a known price add nothing.",
        labels=labels,
    )
    for m in stats.calls.models.values():
        names = [_label(m.provider), _label(m.model)]
        calls.add_metric(names, m.calls)
        tokens.add_metric([*names, "input"], m.input_tokens)
        tokens.add_metric([*names, "output"], m.output_tokens)
        cost.add_metric(names, m.cost_usd)
    yield from (calls, tokens, cost)


class Metrics:
    """One replica's `/metrics` page.

    With an `interval`, the page is read from the journal again at most once per
    interval, in a background thread, while scrapes get the last page at once: a scrape
    costs no query however large the journal (the read is a pass over the calls table,
    docs/server.md has its cost). The first scrape reads the journal itself. With
    interval 0 every scrape reads the journal (tests)."""

    def __init__(self, journal_url: str, interval: float) -> None:
        self.journal_url = journal_url
        self.interval = interval
        self._lock = threading.Lock()
        self._page: tuple[float, bytes] | None = None
        self._registry: CollectorRegistry | None = None
        self._refreshing = False

    def page(self) -> bytes:
        with self._lock:
            current = self._page
            if current is None or self.interval <= 0:
                return self._read()
            if time.monotonic() - current[0] >= self.interval and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="kitaru-metrics", daemon=True).start()
            return current[1]

    def _refresh(self) -> None:
        try:
            body = generate_latest(self._collectors())
            with self._lock:
                self._page = (time.monotonic(), body)
        finally:
            self._refreshing = False

    def _read(self) -> bytes:
        """Read the journal now (the caller holds the lock)."""
        body = generate_latest(self._collectors())
        self._page = (time.monotonic(), body)
        return body

    def _collectors(self) -> CollectorRegistry:
        if self._registry is None:
            # Opened at the first scrape: a server nobody scrapes holds no extra connection.
            journal = connect_journal(self.journal_url)
            assert isinstance(journal, SqlJournal), "a server's journal is SQL"
            registry = CollectorRegistry(auto_describe=False)
            registry.register(JournalCollector(journal))
            self._registry = registry
        return self._registry
