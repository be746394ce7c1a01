"""Dependencies every route shares: the server state and who is calling.

A request authenticates with `Authorization: Bearer <token>`, or, from the web UI,
with the session cookie; a change made with the cookie must also carry the page's
CSRF token (`X-Kitaru-CSRF`), so another site cannot make a signed-in browser act.
The token is checked by the guard (kitaru/server/_guard.py) before the body is read;
these dependencies decide what the caller's scope allows:

| dependency | who passes |
|---|---|
| `Reader` | read, write and admin tokens |
| `Writer` | write and admin tokens |
| `Admin` | admin tokens |
| `OfExecution` | read, write and admin tokens; a run token for its own execution (`exec_id` in the path) |
| `RunsExecution` | write and admin tokens; a run token for its own execution |
| `AnyToken` | every live token, run tokens included (server info, the artifact store) |
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from kitaru.server._state import ServerState
from kitaru.server._tokens import Caller
from kitaru.server._webhooks import csrf_token

COOKIE = "kitaru_session"
CSRF_HEADER = "X-Kitaru-CSRF"
_SAFE = ("GET", "HEAD", "OPTIONS")

UNAUTHENTICATED = "missing or invalid API token"
READ_ONLY = "this API token is read-only; use a token created with --scope write"
NOT_ADMIN = "this needs an admin token: kitaru server token create --scope admin"
RUN_TOKEN = (
    "this token was minted for one run of execution {execution} and reaches only that "
    "execution's records"
)


async def server_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.kitaru
    return state


State = Annotated[ServerState, Depends(server_state)]


# The scheme every route but health uses, as the OpenAPI document states it
# (kitaru/server/_app.py). The guard checks the token; no route parses it again.
SECURITY_SCHEME = {
    "HTTPBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token: kitaru server token create",
    }
}


async def any_token(request: Request) -> Caller:
    """The caller the guard authenticated (401 otherwise); cookie changes need CSRF.
    No sub-dependencies: every request solves this one."""
    caller: Caller | None = getattr(request.state, "kitaru_caller", None)
    if caller is None:
        raise HTTPException(401, UNAUTHENTICATED, headers={"WWW-Authenticate": "Bearer"})
    if getattr(request.state, "kitaru_by_cookie", False) and request.method not in _SAFE:
        state: ServerState = request.app.state.kitaru
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token(state.secret, caller.token_id)):
            raise HTTPException(403, "missing or invalid CSRF token; reload the page")
    return caller


AnyToken = Annotated[Caller, Depends(any_token)]


def refuse_run_token(caller: Caller) -> None:
    if caller.execution is not None:
        raise HTTPException(403, RUN_TOKEN.format(execution=caller.execution))


async def read_access(caller: AnyToken) -> Caller:
    refuse_run_token(caller)
    return caller


async def write_access(caller: AnyToken) -> Caller:
    refuse_run_token(caller)
    if not caller.can_write:
        raise HTTPException(403, READ_ONLY)
    return caller


async def admin_access(caller: AnyToken) -> Caller:
    refuse_run_token(caller)
    if not caller.is_admin:
        raise HTTPException(403, NOT_ADMIN)
    return caller


async def execution_reader(exec_id: str, caller: AnyToken) -> Caller:
    if not caller.may_touch(exec_id):
        raise HTTPException(403, RUN_TOKEN.format(execution=caller.execution))
    return caller


async def execution_runner(exec_id: str, caller: AnyToken) -> Caller:
    if not caller.may_touch(exec_id):
        raise HTTPException(403, RUN_TOKEN.format(execution=caller.execution))
    if caller.execution is None and not caller.can_write:
        raise HTTPException(403, READ_ONLY)
    return caller


async def execution_runner_of(request: Request, exec_id: str) -> Caller:
    """`RunsExecution` in one step, for the runner API's per-checkpoint routes."""
    return await execution_runner(exec_id, await any_token(request))


def who(state: ServerState, caller: Caller) -> str:
    """Who made a change, for the records that keep it (a deployment's `created_by`, a
    tag's history): the token that asked, never a name the request gives."""
    record = state.tokens.get_token(caller.token_id)
    name = f" ({record.name})" if record is not None else ""
    return f"token {caller.token_id}{name}"


Reader = Annotated[Caller, Depends(read_access)]
Writer = Annotated[Caller, Depends(write_access)]
Admin = Annotated[Caller, Depends(admin_access)]
OfExecution = Annotated[Caller, Depends(execution_reader)]
RunsExecution = Annotated[Caller, Depends(execution_runner)]
