"""`GET /metrics`: the journal's state for Prometheus (kitaru/server/_metrics.py).

Scraped with a read token, as any read: `authorization: {credentials_file: ...}` in a
Prometheus scrape config. Run tokens are refused (403), no token is a 401.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kitaru.journal import Journal
from kitaru.server.routes._deps import Reader, State

router = APIRouter(tags=["metrics"])
# The text format every Prometheus version reads (the page uses nothing newer).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    summary="Executions, checkpoint calls, waits, queues, workers and model usage "
    "(Prometheus text format)",
    response_class=Response,
)
def metrics(request: Request, state: State, caller: Reader) -> Response:
    return Response(
        state.metrics.page() + _streams(request, state.journal), media_type=CONTENT_TYPE
    )


def _streams(request: Request, journal: Journal) -> bytes:
    """This process's event streams and their journal polls (kitaru/server/_feeds.py):
    counted in the process, not read from the journal, so each replica has its own (sum
    them across instances). Always current: the journal's part may be a cached page."""
    from prometheus_client import CollectorRegistry, generate_latest

    from kitaru.server._feeds import FeedCollector, Feeds

    feeds = getattr(request.app.state, "kitaru_feeds", None)
    if feeds is None:  # no stream yet: zeros
        feeds = Feeds(journal)
    slots = getattr(request.app.state, "kitaru_streams", None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FeedCollector(feeds, slots.open if slots is not None else 0))
    return generate_latest(registry)
