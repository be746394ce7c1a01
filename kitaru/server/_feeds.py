"""One journal poll per followed execution, however many SSE streams follow it.

The protocol of a followed execution's feed in this server process, in order:

1. A stream (routes/_stream.py) subscribes with the last entry its client saw. The
   execution's `Feed` is made by the first subscriber, and its one poller task started,
   reading on from that subscriber's entry (or from the start, if the feed has no such
   entry: a client that claims to have seen more than there is).
2. The poller reads the journal every POLL seconds, status first and entries after its
   `head` second (pages of PAGE, read one after the other while pages come back full),
   keeps the last KEEP entries, and wakes every subscriber.
3. A subscriber sends the entries after its own cursor from the kept ones. One that is
   behind them (a reconnect from far back, a client slower than KEEP entries) reads its
   gap from the journal itself, a page at a time (a catch-up read), until the kept
   entries cover it again.
4. Once a poll has read an ended (or waiting) status and then every entry after it, the
   poller stops; a subscriber that has sent everything up to the `head` sends `end`.
   Because a run writes its last entries before its status changes, nothing is left out.
5. The last subscriber to leave stops the poller and the feed is forgotten.

Journal reads run on the streams' own small thread pool (READERS), never on the threads
other requests use. `FeedCounters` counts polls and catch-up reads for `/metrics`
(kitaru_sse_polls_total, kitaru_sse_catch_up_reads_total).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import anyio.to_thread
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kitaru import _lease
from kitaru._follow import STOPS
from kitaru.journal import EventRecord, Journal

PAGE = 100
POLL = 0.25
# Entries a feed keeps in memory for its subscribers (shared by all of them).
KEEP = 2 * PAGE
READERS = anyio.CapacityLimiter(4)

log = logging.getLogger("kitaru.server")


@dataclass
class FeedCounters:
    polls: int = 0
    catch_up_reads: int = 0


class Feed:
    """One execution's feed as this process follows it: the last entries read, the
    status, and a change signal for the subscribers."""

    def __init__(self, feeds: Feeds, exec_id: str, head: int) -> None:
        self.feeds = feeds
        self.exec_id = exec_id
        self.head = head  # the largest entry number the poller has read
        self.kept: list[EventRecord] = []  # the last entries up to `head`, in order
        self.status = "running"
        self.error: str | None = None
        self.ended = False  # a stop status was read, then every entry after it
        self.broken = False  # the journal could not be read: streams close, clients retry
        self.subscribers = 0
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # -- what subscribers use ----------------------------------------------------------
    def kept_after(self, cursor: int) -> list[EventRecord] | None:
        """Up to PAGE kept entries after `cursor`; None when they do not reach back to
        it (the subscriber reads its gap from the journal)."""
        if cursor >= self.head:
            return []
        if not self.kept or self.kept[0].seq > cursor + 1:
            return None
        start = bisect.bisect_right(self.kept, cursor, key=lambda e: e.seq)
        return self.kept[start : start + PAGE]

    async def catch_up(self, cursor: int) -> list[EventRecord]:
        self.feeds.counters.catch_up_reads += 1
        return await anyio.to_thread.run_sync(
            lambda: self.feeds.journal.events(self.exec_id, after=cursor, limit=PAGE),
            limiter=READERS,
        )

    # -- the poller --------------------------------------------------------------------
    def _wake(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def _read(self, after: int) -> tuple[str, str | None, list[EventRecord]]:
        # Status first, entries second: a run writes its last entries before its status
        # changes, so an ended status means the entries read next are all there are.
        journal = self.feeds.journal
        record = journal.get_execution(self.exec_id)
        status = "gone" if record is None else _lease.effective_status(
            record.status, record.owner, record.lease_until
        )  # fmt: skip
        error = record.error if record is not None else None
        return status, error, journal.events(self.exec_id, after=after, limit=PAGE)

    def _has(self, seq: int) -> bool:
        return bool(self.feeds.journal.events(self.exec_id, after=seq - 1, limit=1))

    async def run(self) -> None:
        try:
            if self.head > 0 and not await anyio.to_thread.run_sync(
                self._has, self.head, limiter=READERS
            ):
                self.head = 0  # the first subscriber claimed more than the feed holds
            while True:
                status, error, rows = await anyio.to_thread.run_sync(
                    self._read, self.head, limiter=READERS
                )
                self.feeds.counters.polls += 1
                self.status, self.error = status, error
                if rows:
                    self.kept.extend(rows)
                    del self.kept[:-KEEP]
                    self.head = rows[-1].seq
                if len(rows) < PAGE and status in (*STOPS, "gone"):
                    self.ended = True
                self._wake()
                if self.ended:
                    return
                if len(rows) < PAGE:
                    await anyio.sleep(POLL)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("the live feed of execution %s could not be read: %s", self.exec_id, exc)
            self.broken = True
            self.feeds.forget(self)
            self._wake()


class Feeds:
    """The feeds this server process follows, one per execution."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.counters = FeedCounters()
        self._feeds: dict[str, Feed] = {}

    def subscribe(self, exec_id: str, after: int) -> Feed:
        feed = self._feeds.get(exec_id)
        if feed is None:
            feed = self._feeds[exec_id] = Feed(self, exec_id, after)
            feed.task = asyncio.get_running_loop().create_task(feed.run())
        feed.subscribers += 1
        return feed

    def unsubscribe(self, feed: Feed) -> None:
        feed.subscribers -= 1
        if feed.subscribers <= 0:
            self.forget(feed)
            if feed.task is not None and not feed.task.done():
                feed.task.cancel()

    def forget(self, feed: Feed) -> None:
        if self._feeds.get(feed.exec_id) is feed:
            del self._feeds[feed.exec_id]

    def __len__(self) -> int:
        return len(self._feeds)


class FeedCollector(Collector):
    """This process's streams, for `/metrics` (counted here: each replica its own)."""

    def __init__(self, feeds: Feeds, open_streams: int) -> None:
        self.feeds = feeds
        self.open_streams = open_streams

    def collect(self) -> Iterator[Metric]:
        polls = CounterMetricFamily(
            "kitaru_sse_polls",
            "Journal reads of the shared pollers of followed executions' live feeds "
            "(one per followed execution every 0.25 s, however many streams follow it).",
        )
        polls.add_metric([], self.feeds.counters.polls)
        catch_up = CounterMetricFamily(
            "kitaru_sse_catch_up_reads",
            "Journal reads of streams behind the entries their feed keeps in memory "
            "(reconnects from far back, slow clients).",
        )
        catch_up.add_metric([], self.feeds.counters.catch_up_reads)
        followed = GaugeMetricFamily(
            "kitaru_sse_followed_executions", "Executions whose live feed this process polls now."
        )
        followed.add_metric([], len(self.feeds))
        streams = GaugeMetricFamily("kitaru_sse_streams", "Open event streams (SSE) now.")
        streams.add_metric([], self.open_streams)
        yield from (polls, catch_up, followed, streams)
