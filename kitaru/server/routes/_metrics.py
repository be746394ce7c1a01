"""`GET /metrics`: the journal's state for Prometheus (kitaru/server/_metrics.py).

Scraped with a read token, as any read: `authorization: {credentials_file: ...}` in a
Prometheus scrape config. Run tokens are refused (403), no token is a 401.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

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
def metrics(state: State, caller: Reader) -> Response:
    return Response(state.metrics.page(), media_type=CONTENT_TYPE)
