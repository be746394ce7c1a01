"""`GET /api/v1/executions/{id}/events`: an execution's live feed as Server-Sent Events.

Each feed entry (kitaru/_events.py) is one SSE event: `id` is its number, `event` its
kind, `data` the entry as one line of JSON. A client that reconnects sends the last id
it saw in `Last-Event-ID` (browsers' EventSource does it by itself; `?after=N` does the
same for clients that cannot set headers) and the stream goes on from the next entry:
the journal numbers entries in the order they become visible, so none is lost and none
repeated. When the execution ends or waits the stream sends every entry left, then
`event: end` with the status, and closes.

The streams of one execution share one journal poll (kitaru/server/_feeds.py): a
poller per followed execution reads the feed and wakes them; a stream behind the
entries it keeps reads its gap itself.

The route reads like the other reads: a read, write or admin token, or a run token of
this execution (the guard checks the token before anything else). Each stream is bounded:
its writes are a page of entries at most; the journal is read by a small pool of
threads of the streams' own (READERS), so streams never take the threads other requests
run on; a write the client does not take within WRITE_TIMEOUT closes the stream (its
feed's poller goes on for the others); a comment line every HEARTBEAT seconds keeps
proxies from closing a quiet one; after MAX_SECONDS the server closes it and the client
reconnects. At most `KITARU_SERVER_MAX_STREAMS` (64) streams are open at once; one more
is a 503 with Retry-After.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from kitaru._errors import NotFoundError
from kitaru.journal import EventRecord, Journal
from kitaru.server._feeds import READERS, Feed, Feeds
from kitaru.server.routes._deps import OfExecution, State

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])

HEARTBEAT = 15.0
WRITE_TIMEOUT = 10.0
MAX_SECONDS = 3600.0


class Slots:
    """Open streams, counted against a limit (one per server process)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self.open -= 1


def _slots(request: Request) -> Slots:
    slots: Slots | None = getattr(request.app.state, "kitaru_streams", None)
    if slots is None:
        limit = int(os.environ.get("KITARU_SERVER_MAX_STREAMS", "64"))
        slots = request.app.state.kitaru_streams = Slots(limit)
    return slots


def _feeds(request: Request, journal: Journal) -> Feeds:
    feeds: Feeds | None = getattr(request.app.state, "kitaru_feeds", None)
    if feeds is None:
        feeds = request.app.state.kitaru_feeds = Feeds(journal)
    return feeds


def _last_seen(request: Request, after: int | None) -> int:
    raw = request.headers.get("last-event-id", "").strip()
    if raw:
        if not raw.isdigit() or len(raw) > 15:
            raise HTTPException(422, "Last-Event-ID must be the number of a feed entry")
        return int(raw)
    return after or 0


@router.get(
    "/{exec_id}/events",
    summary="Stream the execution's live feed (Server-Sent Events, resumable with Last-Event-ID)",
)
async def stream_events(
    exec_id: str,
    request: Request,
    state: State,
    caller: OfExecution,
    after: Annotated[int | None, Query(ge=0, le=2**53)] = None,
) -> Response:
    start = _last_seen(request, after)
    record = await anyio.to_thread.run_sync(state.journal.get_execution, exec_id, limiter=READERS)
    if record is None:
        raise NotFoundError(f"execution {exec_id} not found")
    slots = _slots(request)
    if not slots.take():
        raise HTTPException(
            503,
            f"{slots.limit} event streams are open on this server; try again shortly "
            "(KITARU_SERVER_MAX_STREAMS raises the limit)",
            headers={"Retry-After": "5"},
        )
    return EventStream(_feeds(request, state.journal), exec_id, start, slots)


def frame(entry: EventRecord) -> bytes:
    data = {
        "seq": entry.seq, "ts": entry.ts, "run": entry.run, "kind": entry.kind,
        "name": entry.name, "checkpoint": entry.call_key, "data": entry.data,
    }  # fmt: skip
    if entry.reused:
        data["reused"] = True
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {entry.seq}\nevent: {entry.kind}\ndata: {text}\n\n".encode()


class EventStream(Response):
    """The response runs its own loop, so that it can time its writes and hear the
    client leave."""

    media_type = "text/event-stream"

    def __init__(self, feeds: Feeds, exec_id: str, after: int, slots: Slots) -> None:
        super().__init__(media_type=self.media_type)
        self.feeds = feeds
        self.exec_id = exec_id
        self.after = after
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        feed: Feed | None = None
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            feed = self.feeds.subscribe(self.exec_id, self.after)
            async with anyio.create_task_group() as group:
                group.start_soon(self._until_gone, receive, group.cancel_scope)
                await self._pump(send, feed)
                group.cancel_scope.cancel()
        except (TimeoutError, OSError):
            pass  # a client that stopped reading: the connection is dropped
        finally:
            if feed is not None:
                self.feeds.unsubscribe(feed)
            self.slots.give_back()

    async def _until_gone(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    async def _write(self, send: Send, body: bytes, more: bool = True) -> None:
        with anyio.fail_after(WRITE_TIMEOUT):
            await send({"type": "http.response.body", "body": body, "more_body": more})

    async def _pump(self, send: Send, feed: Feed) -> None:
        """Send the feed's entries after this client's, as the shared poller reads them
        (kitaru/server/_feeds.py), then `end`."""
        await self._write(send, b"retry: 2000\n\n")
        cursor, quiet_since, opened = self.after, time.monotonic(), time.monotonic()
        while True:
            if feed.broken:
                await self._write(send, b"", more=False)  # the client reconnects
                return
            rows = feed.kept_after(cursor)
            if rows is None:
                rows = await feed.catch_up(cursor)
            if rows:
                await self._write(send, b"".join(frame(r) for r in rows))
                cursor, quiet_since = rows[-1].seq, time.monotonic()
                continue
            if feed.ended and cursor >= feed.head:
                end = json.dumps({"status": feed.status, "error": feed.error, "last": cursor})
                await self._write(send, f"event: end\ndata: {end}\n\n".encode(), more=False)
                return
            now = time.monotonic()
            if now - opened > MAX_SECONDS:
                await self._write(send, b"", more=False)
                return
            if now - quiet_since >= HEARTBEAT:
                await self._write(send, b": keep-alive\n\n")
                quiet_since = now
            changed = feed.changed
            with anyio.move_on_after(max(0.0, quiet_since + HEARTBEAT - now)):
                await changed.wait()
