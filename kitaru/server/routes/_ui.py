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


def _timeline(view: dict[str, Any], wait_seq: dict[str, int]) -> list[dict[str, Any]]:
    """Checkpoint calls and waits in the order the flow reached them, each with the state
    a person reads: ran, reused, failed, override, waiting or answered. Calls that ran at
    the same time get a group row above them with their wall time."""
    rows: list[dict[str, Any]] = []
    groups = view.get("parallel_groups", [])
    spans = [c["duration_s"] for c in view["checkpoints"]] + [g["wall_s"] for g in groups]
    longest = max([*spans, 1e-6])
    for n, g in enumerate(groups):
        members = view["checkpoints"][g["first"] : g["last"] + 1]
        names = sorted({c["name"] for c in members})
        states = sorted({_state(c) for c in members})
        ran = any(_state(c) in ("ran", "failed") for c in members)
        rows.append(
            {
                "kind": "group",
                "key": f"{names[0]} ×{len(members)}"
                if len(names) == 1
                else f"{len(members)} calls",
                "position": members[0]["position"],
                "order": 0,
                "group": n,
                "state": states[0] if len(states) == 1 else "mixed",
                "detail": "in parallel" + (f" · sum {_duration(g['sum_s'])}" if ran else ""),
                "duration": _duration(g["wall_s"]) if ran else "",
                "bar": round(100 * g["wall_s"] / longest) if ran else 0,
                "error": None,
                "output": None,
            }
        )
    for c in view["checkpoints"]:
        state = _state(c)
        ran = state in ("ran", "failed")
        rows.append(
            {
                "kind": "checkpoint",
                "key": c["key"],
                "position": c["position"],
                "order": 1,
                "group": c.get("group"),
                "state": state,
                "detail": _origin_detail(c),
                "duration": _duration(c["duration_s"]) if ran else "",
                "bar": round(100 * c["duration_s"] / longest) if ran else 0,
                "error": c.get("error"),
                "output": c.get("output"),
            }
        )
    for w in view["waits"]:
        state = {"pending": "waiting", "timed_out": "waiting"}.get(w["status"], w["status"])
        rows.append(
            {
                "kind": "wait",
                "key": w["key"],
                "position": wait_seq.get(w["key"], 0),
                "order": 1,
                "group": None,
                "state": state,
                "detail": w.get("question") or "",
                "duration": "",
                "bar": 0,
                "error": None,
                "output": None,
            }
        )
    # Journal order, a group's row just before its first call; waits by their position.
    first_of = {n: g["first"] for n, g in enumerate(groups)}
    index = {c["key"]: i for i, c in enumerate(view["checkpoints"])}

    def order(row: dict[str, Any]) -> tuple[int, int, int]:
        if row["kind"] == "group":
            return (view["checkpoints"][first_of[row["group"]]]["position"], 0, 0)
        return (row["position"], row["order"], index.get(row["key"], 0))

    rows.sort(key=order)
    return rows


def _state(c: dict[str, Any]) -> str:
    return str(
        {"ran": "ran", "journal": "reused", "reused": "reused"}.get(c["origin"], c["origin"])
    )


def _origin_detail(c: dict[str, Any]) -> str:
    if c["origin"] == "journal":
        return f"from the journal (run {c['run']})"
    if c["origin"] == "reused":
        return f"from {c.get('reused_from')}"
    if c["origin"] == "override":
        return "value given at replay"
    return f"run {c['run']}" + (f", {c['attempts']} attempts" if c.get("attempts", 1) > 1 else "")


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _preview_text(p: dict[str, Any]) -> dict[str, Any]:
    if p["kind"] == "json":
        text = json.dumps(p["value"], indent=2, ensure_ascii=False)
    elif p["kind"] == "text":
        text = str(p["value"])
    else:
        return {"kind": p["kind"], "text": p.get("reason", "")}
    return {"kind": p["kind"], "text": text if len(text) <= 2000 else text[:2000] + "\n…"}


def _group_logs(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for g in lines:
        header = (g["checkpoint"], g["run"])
        if not groups or groups[-1]["header"] != header:
            groups.append(
                {"header": header, "checkpoint": g["checkpoint"], "run": g["run"], "text": ""}
            )
        prefix = "[stderr] " if g["stream"] == "stderr" else ""
        groups[-1]["text"] += prefix + g["text"]
    return groups


def _diff_lines(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    out = []
    for line in text.splitlines():
        kind = "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"
        if line.startswith(("+++", "---", "@@")):
            kind = "hdr"
        out.append((kind, line))
    return out
