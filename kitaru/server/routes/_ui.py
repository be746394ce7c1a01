"""The web UI: server-rendered pages (Jinja2) with a little JavaScript for wait forms.

Signing in stores the API token in an HttpOnly, SameSite=Strict cookie; pages that
change something send the page's CSRF token with the request. The sign-in form itself
carries a one-time value that must match a cookie set with the form (so another site
cannot sign a browser in with the attacker's token), and signing out needs the page's
CSRF token. Run tokens cannot sign in: they reach one execution, not the UI. Answering a wait goes
through the same API endpoint as the CLI (`POST /api/v1/executions/{id}/input`), so
the answer is checked against the wait's schema by the same code.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from kitaru import _control, _views
from kitaru._errors import KitaruError
from kitaru.client import Artifacts, Executions
from kitaru.server._tokens import Caller
from kitaru.server._ui_render import render
from kitaru.server._webhooks import csrf_token
from kitaru.server.routes._artifacts import preview
from kitaru.server.routes._deps import COOKIE, State
from kitaru.server.routes._executions import STATUSES
from kitaru.server.routes._ui_timeline import (
    _diff_lines,
    _group_logs,
    _preview_text,
    _timeline,
)

router = APIRouter(prefix="/ui", include_in_schema=False)

SESSION_SECONDS = 12 * 3600


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__("sign in")
        self.next_url = next_url


LOGIN_COOKIE = "kitaru_login"


async def _session(request: Request, state: State) -> Caller | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    caller = state.cached_caller(token) or await run_in_threadpool(state.authenticate, token)
    if caller is None or caller.execution is not None:
        return None
    return caller


async def ui_caller(request: Request, state: State) -> Caller:
    caller = await _session(request, state)
    if caller is None:
        raise LoginRequired(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
    return caller


Viewer = Annotated[Caller, Depends(ui_caller)]


def _page(
    request: Request, state: State, caller: Caller | None, name: str, **ctx: Any
) -> HTMLResponse:
    csrf = csrf_token(state.secret, caller.token_id) if caller else ""
    html = render(name, caller=caller, csrf=csrf, path=request.url.path, **ctx)
    return HTMLResponse(html, headers=_SECURITY_HEADERS)


_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _login_page(
    request: Request, state: State, target: str, error: str | None, status: int = 200
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(24)
    page = _page(request, state, None, "login.html", next=target, error=error, login_csrf=nonce)
    page.status_code = status
    page.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/ui/login",
    )
    return page


@router.get("/login")
def login_page(request: Request, state: State, next: str = "/ui/executions") -> HTMLResponse:
    return _login_page(request, state, _safe_next(next), None)


def _safe_next(target: str) -> str:
    # Only pages of this UI: a sign-in link must not send people elsewhere.
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/executions"


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    form = parse_qs((await request.body()).decode(errors="replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/ui/executions"])[0])
    sent = (form.get("csrf") or [""])[0]
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(sent, expected):
        return _login_page(
            request, state, target, "The sign-in form expired; sign in again.", status=403
        )
    caller = await run_in_threadpool(state.authenticate, token) if token else None
    if caller is None or caller.execution is not None:
        return _login_page(request, state, target, "That token is not valid.", status=401)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, state: State) -> Response:
    caller = await _session(request, state)
    if caller is not None:
        form = parse_qs((await request.body()).decode(errors="replace"))
        sent = (form.get("csrf") or [""])[0]
        if not hmac.compare_digest(sent, csrf_token(state.secret, caller.token_id)):
            return _error(request, state, caller, "Sign-out needs the page's form; reload it.", 403)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("")
@router.get("/")
def home() -> Response:
    return RedirectResponse("/ui/executions")


@router.get("/executions")
def executions(
    request: Request,
    state: State,
    caller: Viewer,
    flow: str = "",
    status: str = "",
    limit: int = 50,
) -> HTMLResponse:
    limit = max(1, min(limit, 1000))
    chosen = status if status in STATUSES else None
    found = Executions(state.journal).list(flow=flow or None, status=chosen, limit=limit)
    flows = sorted({e.flow for e in state.journal.list_executions(limit=1000)})
    return _page(
        request,
        state,
        caller,
        "executions.html",
        executions=[e.to_dict() for e in found],
        flows=flows,
        flow=flow,
        status=chosen or "",
        statuses=STATUSES,
        limit=limit,
    )


@router.get("/waits")
def waits(request: Request, state: State, caller: Viewer) -> HTMLResponse:
    now = time.time()
    pending = [_views.wait_view(w, now) for w in state.journal.pending_waits()]
    return _page(request, state, caller, "waits.html", waits=pending)


@router.get("/stacks")
def stacks_page(request: Request, state: State, caller: Viewer) -> HTMLResponse:
    from kitaru import stacks

    active = stacks.chosen_name(state.journal)
    views = [stacks.describe(s, active=active) for s in stacks.list_stacks(state.journal)]
    return _page(request, state, caller, "stacks.html", stacks=views)


@router.get("/executions/{exec_id}")
def execution(exec_id: str, request: Request, state: State, caller: Viewer) -> HTMLResponse:
    journal = state.journal
    try:
        view = Executions(journal).get(exec_id).to_dict()
    except KitaruError as exc:
        return _error(request, state, caller, str(exc), 404)
    record = _control.get_execution(journal, exec_id)
    artifacts = []
    for a in journal.list_artifacts(exec_id):
        item = _views.artifact_view(a)
        item["preview"] = _preview_text(preview(journal, a))
        artifacts.append(item)
    logs = Executions(journal).logs(exec_id)
    replays = [
        _views.execution_view(journal, r, detail=False)
        for r in journal.list_executions(replayed_from=exec_id, limit=200)
    ]
    family = [
        e for e in journal.list_executions(flow=record.flow, limit=200) if e.exec_id != exec_id
    ]
    return _page(
        request,
        state,
        caller,
        "execution.html",
        e=view,
        timeline=_timeline(view, {w.key: w.seq for w in journal.waits(exec_id)}),
        artifacts=artifacts,
        logs=_group_logs(logs),
        replays=replays,
        others=[o.exec_id for o in family],
        schemas={w["key"]: json.dumps(w["schema"]) for w in view["waits"]},
    )


@router.get("/cohorts")
def cohorts_page(
    request: Request, state: State, caller: Viewer, flow: str = "", tag: str = ""
) -> HTMLResponse:
    """Replay many: the matrix of a cohort (`kitaru executions replay --flow F`)."""
    from kitaru import _cohort

    flows = sorted({e.flow for e in state.journal.list_executions(limit=1000)})
    found = _cohort.cohorts(state.journal, flow) if flow else {}
    chosen = tag if tag in found else next(iter(found), "")
    data = _cohort.matrix_of(state.journal, found[chosen]) if chosen else None
    return _page(
        request, state, caller, "cohorts.html",
        flows=flows, flow=flow, tags=list(found), tag=chosen, m=data, marks=COHORT_MARKS,
    )  # fmt: skip


COHORT_MARKS = {"same": "=", "changed": "~", "failed": "x", "new": "+", "missing": "-"}


@router.get("/diff")
def diff(request: Request, state: State, caller: Viewer, a: str = "", b: str = "") -> HTMLResponse:
    try:
        result = Artifacts(state.journal).diff(a, b)
    except KitaruError as exc:
        return _error(request, state, caller, str(exc), 404)
    for entry in result["checkpoints"]:
        entry["lines"] = _diff_lines(entry.get("diff"))
    return _page(request, state, caller, "diff.html", d=result)


def _error(
    request: Request, state: State, caller: Caller, message: str, status: int
) -> HTMLResponse:
    page = _page(request, state, caller, "error.html", message=message)
    page.status_code = status
    return page
