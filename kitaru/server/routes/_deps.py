"""Dependencies every route shares: the server state and who is calling.

A request authenticates with `Authorization: Bearer <token>`, or, from the web UI,
with the session cookie; a change made with the cookie must also carry the page's
CSRF token (`X-Kitaru-CSRF`), so another site cannot make a signed-in browser act.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from kitaru.server._state import ServerState
from kitaru.server._tokens import Caller
from kitaru.server._webhooks import csrf_token

COOKIE = "kitaru_session"
CSRF_HEADER = "X-Kitaru-CSRF"
_SAFE = ("GET", "HEAD", "OPTIONS")

_bearer = HTTPBearer(auto_error=False, description="An API token: kitaru server token create")

UNAUTHENTICATED = "missing or invalid API token"
READ_ONLY = "this API token is read-only; use a token created with --scope write"


async def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.kitaru
    return state


State = Annotated[ServerState, Depends(server_state)]


async def _authenticate(state: ServerState, token: str) -> Caller | None:
    # Async, so a cached token costs no trip to the thread pool; a new one is checked
    # against the journal there.
    caller = state.cached_caller(token)
    if caller is None:
        caller = await run_in_threadpool(state.authenticate, token)
    return caller


async def read_access(
    request: Request,
    state: State,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """Any valid token (401 otherwise)."""
    if credentials is not None:
        caller = await _authenticate(state, credentials.credentials)
    elif COOKIE in request.cookies:
        caller = await _authenticate(state, request.cookies[COOKIE])
        if caller is not None and request.method not in _SAFE:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent, csrf_token(state.secret, caller.token_id)):
                raise HTTPException(403, "missing or invalid CSRF token; reload the page")
    else:
        caller = None
    if caller is None:
        raise HTTPException(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    return caller


async def write_access(caller: Annotated[Caller, Depends(read_access)]) -> Caller:
    """A token with the write scope (403 for a read-only one)."""
    if not caller.can_write:
        raise HTTPException(403, READ_ONLY)
    return caller


Reader = Annotated[Caller, Depends(read_access)]
Writer = Annotated[Caller, Depends(write_access)]
