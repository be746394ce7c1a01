"""The journal over HTTP: what `HttpJournal` (KITARU_SERVER_URL) calls.

`POST /api/v1/journal/<method>` runs that method of the `Journal` protocol on the
server's journal, with the JSON body as its keyword arguments, typed by the
protocol's annotations. Reading methods need any token; the rest need `write`
(a runner: it creates executions, commits checkpoint calls, answers waits).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kitaru._errors import InvalidInputError, NotFoundError
from kitaru.remote._codec import decode, encode, journal_methods, signature
from kitaru.server._body import read_body
from kitaru.server.routes._deps import READ_ONLY, Reader, State

router = APIRouter(prefix="/api/v1/journal", tags=["journal"])

READ_METHODS = frozenset(
    {
        "get_execution",
        "list_executions",
        "calls",
        "get_artifact",
        "list_artifacts",
        "find_artifact",
        "waits",
        "pending_waits",
        "logs",
        "get_stack",
        "list_stacks",
        "get_setting",
        "get_deployment",
        "list_deployments",
        "get_tag",
        "list_tags",
        "tag_history",
    }
)


@router.post(
    "/{method}",
    summary="Call a Journal protocol method (the HTTP journal's transport)",
    description="Methods: " + ", ".join(journal_methods()) + ". The body holds the keyword "
    'arguments; records are objects, bytes are {"$bytes": base64}. Returns {"result": ...}.',
)
async def call(method: str, request: Request, state: State, caller: Reader) -> JSONResponse:
    try:
        params, _returns = signature(method)
    except KeyError:
        raise NotFoundError(
            f"the journal has no method {method!r}; methods: {', '.join(journal_methods())}"
        ) from None
    if method not in READ_METHODS and not caller.can_write:
        raise HTTPException(403, READ_ONLY)
    raw = await read_body(request, state.config.max_upload_bytes)
    try:
        body = json.loads(raw) if raw else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInputError("the body must be a JSON object of keyword arguments")
    unknown = sorted(set(body) - set(params))
    if unknown:
        raise InvalidInputError(
            f"{method}() takes no argument {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(params)}"
        )
    try:
        kwargs = {name: decode(value, params[name]) for name, value in body.items()}
    except (TypeError, KeyError, ValueError) as exc:
        raise InvalidInputError(f"arguments of {method}() do not decode: {exc}") from None
    fn = getattr(state.journal, method)
    try:
        result: Any = await run_in_threadpool(fn, **kwargs)
    except TypeError as exc:
        raise InvalidInputError(f"{method}(): {exc}") from None
    return JSONResponse({"result": encode(result)})
