"""Artifacts: metadata with a preview, raw downloads, and the diff of two executions.

The server never deserializes user types: previews come from the stored JSON (or
UTF-8 text), and pickled values are only ever handed out as bytes.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response

from kitaru import _control, _serialize, _views
from kitaru._artifact_io import read_bytes
from kitaru._errors import ConfigurationError, NotFoundError
from kitaru.client import Artifacts
from kitaru.journal import ArtifactRecord, Journal
from kitaru.server.routes._deps import Reader, State

router = APIRouter(prefix="/api/v1", tags=["artifacts"])

PREVIEW_MAX = 64 * 1024
_MEDIA = {
    "json": "application/json",
    "pydantic": "application/json",
    "dataclass": "application/json",
}


def artifact_bytes(journal: Journal, artifact: ArtifactRecord) -> bytes:
    """The bytes, read only from a store this server serves, checked against the hash."""
    execution = journal.get_execution(artifact.exec_id)
    try:
        return read_bytes(artifact, execution.artifact_store if execution else None)
    except (ConfigurationError, ValueError, KeyError):
        # A store this server does not serve, or an object URI outside its store.
        raise NotFoundError(
            f"the bytes of artifact {artifact.artifact_id} are not available from this server"
        ) from None


def preview(journal: Journal, artifact: ArtifactRecord) -> dict[str, Any]:
    """A JSON or text rendering of a small artifact, or why there is none."""
    if artifact.serializer == "pickle":
        return {"kind": "binary", "reason": "pickled values are not opened by the server"}
    if artifact.size > PREVIEW_MAX:
        return {"kind": "none", "reason": f"larger than {PREVIEW_MAX // 1024} KB; download it"}
    if artifact.inline is None and artifact.uri is None:
        # Listings leave inline bytes out; fetch the full record.
        artifact = journal.get_artifact(artifact.artifact_id) or artifact
    try:
        data = artifact_bytes(journal, artifact)
        ok, value = _serialize.to_jsonable(artifact.serializer, data)
    except Exception as exc:
        return {"kind": "none", "reason": str(exc)}
    if not ok:
        return {"kind": "binary", "reason": f"{artifact.serializer} data"}
    return {"kind": "text" if isinstance(value, str) else "json", "value": value}


def find(journal: Journal, artifact_id: str) -> ArtifactRecord:
    found = journal.get_artifact(artifact_id)
    if found is None:
        raise NotFoundError(f"artifact {artifact_id} not found")
    return found


@router.get("/executions/{exec_id}/artifacts", summary="Artifacts an execution produced")
def list_artifacts(exec_id: str, state: State, caller: Reader) -> list[dict[str, Any]]:
    return [a.to_dict() for a in Artifacts(state.journal).list(exec_id)]


@router.get("/artifacts/diff", summary="Compare two executions checkpoint by checkpoint")
def diff(a: str, b: str, state: State, caller: Reader) -> dict[str, Any]:
    _control.get_execution(state.journal, a)
    _control.get_execution(state.journal, b)
    return Artifacts(state.journal).diff(a, b)


@router.get("/artifacts/{artifact_id}", summary="An artifact's metadata and a preview")
def get_artifact(artifact_id: str, state: State, caller: Reader) -> dict[str, Any]:
    record = find(state.journal, artifact_id)
    view = _views.artifact_view(record)
    view["preview"] = preview(state.journal, record)
    return view


@router.get(
    "/artifacts/{artifact_id}/download",
    summary="The artifact's stored bytes",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download(artifact_id: str, state: State, caller: Reader) -> Response:
    record = find(state.journal, artifact_id)
    data = artifact_bytes(state.journal, record)
    filename = re.sub(r"[^A-Za-z0-9._#-]", "_", f"{record.name}-{record.artifact_id}")
    return Response(
        content=data,
        media_type=_MEDIA.get(record.serializer, "application/octet-stream"),
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "X-Kitaru-Serializer": record.serializer,
        },
    )
