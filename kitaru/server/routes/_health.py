"""Liveness and readiness: the only endpoints that need no token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from kitaru._version import __version__
from kitaru.server.routes._deps import State

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process serves requests")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/health/ready", summary="Readiness: the journal answers", response_model=None)
def ready(state: State) -> dict[str, Any] | JSONResponse:
    try:
        state.journal.get_execution("kx_readiness_probe")
    except Exception:
        return JSONResponse({"status": "unavailable", "detail": "journal unreachable"}, 503)
    return {"status": "ok", "version": __version__}
