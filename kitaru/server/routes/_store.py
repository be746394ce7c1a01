"""The server's artifact stores over HTTP: what `HttpArtifactStore` calls, so a client or
container keeps artifacts in the server's store without credentials of its own.

Only the roots the server was started with are served, and keys are relative paths
of plain segments: nothing can name an object outside a store. Objects are kept under
`<exec_id>/...`: a run token reads and writes under its own execution's folder (and
reads those of the executions it replays), nothing else.

Uploads are read in chunks and refused past the server's upload limit, never buffered
beyond it. Nothing Python would import is written (a `.py`, `.pyc`, `.so`, `.pth`
file): a store on disk is a folder of files anyone with a write token fills, and a
process whose path reached into it would run them. (Kitaru names artifact objects by
their ids; clients never load code from a store either, kitaru/_project.py.)
"""

from __future__ import annotations

import importlib.machinery
import re
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from kitaru._errors import InvalidInputError, NotFoundError
from kitaru.artifacts import ArtifactStore
from kitaru.server._guard import read_body
from kitaru.server._tokens import Caller
from kitaru.server.routes._deps import RUN_TOKEN, AnyToken, State

router = APIRouter(prefix="/api/v1/store", tags=["artifact store"])

_SEGMENT = re.compile(r"^[\w#@+=,~-][\w.#@+=,~-]*$")
# What the import system loads from a folder on sys.path, and site's path files.
_IMPORTABLE = (*importlib.machinery.all_suffixes(), ".pth", ".pyz", ".pyw")


def _store(state: State, root: str) -> ArtifactStore:
    store = state.store(root)
    if store is None:
        raise NotFoundError(f"this server does not serve the artifact store {root!r}")
    return store


def _key(key: str) -> str:
    parts = key.split("/")
    if not key or len(key) > 1024 or not all(_SEGMENT.match(p) for p in parts):
        raise InvalidInputError(
            f"invalid artifact key {key!r}: use /-separated names of letters, digits and ._-"
        )
    return key


def _may(state: State, caller: Caller, key: str, *, write: bool) -> None:
    """Run tokens: only their execution's objects (reads also its replay sources';
    keys start with the execution id); read tokens: no changes."""
    if caller.execution is None:
        if write and not caller.can_write:
            raise HTTPException(
                403, "this API token is read-only; use a token created with --scope write"
            )
        return
    from kitaru.server.routes._records import lineage

    owner = key.split("/", 1)[0]
    allowed = {caller.execution} if write else lineage(state.journal, caller.execution)
    if owner not in allowed:
        raise HTTPException(403, RUN_TOKEN.format(execution=caller.execution))


@router.get("/check", summary="Check that a served store can be written to")
def check(root: str, state: State, caller: AnyToken) -> dict[str, Any]:
    _store(state, root).check()
    return {"root": root, "ok": True}


@router.get("/keys", summary="Keys in a served store that start with a prefix")
def keys(root: str, state: State, caller: AnyToken, prefix: str = "") -> dict[str, Any]:
    _may(state, caller, prefix, write=False)
    return {"keys": sorted(_store(state, root).list(prefix))}


@router.put("/objects/{key:path}", summary="Write an object (the body is its bytes)")
async def write(key: str, root: str, request: Request, state: State, caller: AnyToken) -> Any:
    store = _store(state, root)
    _may(state, caller, _key(key), write=True)
    if any(part.lower().endswith(_IMPORTABLE) for part in key.split("/")):
        raise InvalidInputError(
            f"artifact key {key!r} names a file Python would import; artifact objects are "
            "named by their ids (kitaru writes nothing else)"
        )
    data = await read_body(request, state.config.max_upload_bytes)
    uri = await run_in_threadpool(store.write, _key(key), data)
    return {"uri": uri, "size": len(data)}


@router.get(
    "/objects/{key:path}",
    summary="Read an object",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def read(key: str, root: str, state: State, caller: AnyToken) -> Response:
    store = _store(state, root)
    _may(state, caller, _key(key), write=False)
    try:
        data = store.read(_key(key))
    except KeyError:
        raise NotFoundError(f"no object {key!r} in {root}") from None
    return Response(data, media_type="application/octet-stream")


@router.head("/objects/{key:path}", summary="Whether an object exists", response_class=Response)
def exists(key: str, root: str, state: State, caller: AnyToken) -> Response:
    _may(state, caller, _key(key), write=False)
    found = _store(state, root).exists(_key(key))
    return Response(status_code=200 if found else 404)


@router.delete("/objects/{key:path}", summary="Delete an object", status_code=204)
def delete(key: str, root: str, state: State, caller: AnyToken) -> Response:
    _may(state, caller, _key(key), write=True)
    _store(state, root).delete(_key(key))
    return Response(status_code=204)
