"""What the server is: its version, the stores it serves, its limits; and its OpenAPI
document (behind a token like every other endpoint but health)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from kitaru._version import __version__
from kitaru.server.routes._deps import AnyToken, Reader, State

router = APIRouter(prefix="/api/v1", tags=["server"])


@router.get("/info", summary="Server version, artifact stores and limits")
def info(state: State, caller: AnyToken) -> dict[str, Any]:
    return {
        "version": __version__,
        "api": "v1",
        "artifact_store": state.default_store.uri,
        "artifact_stores": list(state.stores),
        "max_upload_bytes": state.config.max_upload_bytes,
        "max_json_bytes": state.config.max_json_bytes,
        "public_url": state.config.public_url,
        "scope": caller.scope,
        **({"execution": caller.execution} if caller.execution else {}),
    }


@router.get("/openapi.json", summary="This API's OpenAPI document", include_in_schema=False)
def openapi(request: Request, caller: Reader) -> dict[str, Any]:
    from kitaru.server._app import openapi_document

    return openapi_document(request.app)
