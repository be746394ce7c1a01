"""What every request passes before a route sees it, cheapest refusal first.

1. The token: an API request (everything under /api/ but the signed webhooks) without a
   live token gets 401 before a byte of its body is read, so an unauthenticated client
   costs the server a header parse, whatever it sends.
2. The size: each route has a body limit (JSON routes a few MiB, artifact uploads the
   server's upload limit, the UI's forms 64 KiB). A declared length over it is a 413 at
   once; a streamed body is counted and cut off at the limit.
3. The shape: a JSON body nested deeper than MAX_DEPTH is a 422 before any route parses
   it, so no request can make a parser or a later `json.dumps` recurse until it fails.
4. The answer: every response carries the security headers (no sniffing, no framing, no
   caching of API answers), as the UI pages do.

The caller it authenticated travels in the request's state (`kitaru_caller`); the
scope checks in kitaru/server/routes/_deps.py read it from there.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kitaru.server._state import ServerState

COOKIE = "kitaru_session"
KiB = 1024
UI_FORM_BYTES = 64 * KiB
MAX_DEPTH = 64
_BODY_METHODS = (b"POST", b"PUT", b"PATCH", "POST", "PUT", "PATCH")

_API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]
_PAGE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than this route's limit of {limit} bytes")
        self.limit = limit


def needs_token(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith("/api/v1/hooks/")


def body_limit(state: ServerState, path: str) -> int:
    if path.startswith("/api/v1/store/objects/"):
        return state.config.max_upload_bytes
    if path.startswith("/ui/"):
        return UI_FORM_BYTES
    return state.config.max_json_bytes


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests containers deeper than `limit` (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


class Guard:
    """ASGI middleware: token, size and depth checks, security headers."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        send = _with_headers(send, _API_HEADERS if path.startswith("/api/") else _PAGE_HEADERS)
        headers = dict(scope.get("headers") or [])
        if needs_token(path):
            caller, by_cookie = await self._caller(headers)
            if caller is None:
                await _answer(send, 401, "missing or invalid API token", None)
                return
            state = scope.setdefault("state", {})
            state["kitaru_caller"] = caller
            state["kitaru_by_cookie"] = by_cookie
        limit = body_limit(self.state, path)
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await _answer(send, 413, str(BodyTooLarge(limit)), "KitaruUsageError")
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/") and not path.startswith("/api/v1/store/"):
            body = await _read_all(receive, limit)
            if body is None:
                await _answer(send, 413, str(BodyTooLarge(limit)), "KitaruUsageError")
                return
            reason = _shape_problem(body)
            if reason is not None:
                await _answer(send, 422, reason, "InvalidInputError")
                return
            await self.app(scope, _replay(body, receive), send)
            return
        await self.app(scope, _counted(receive, limit), send)

    async def _caller(self, headers: dict[bytes, bytes]) -> tuple[Any, bool]:
        token, by_cookie = _token_of(headers)
        if not token:
            return None, False
        caller = self.state.cached_caller(token)
        if caller is None:
            caller = await run_in_threadpool(self.state.authenticate, token)
        return caller, by_cookie


def _token_of(headers: dict[bytes, bytes]) -> tuple[str, bool]:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    scheme, _, credentials = auth.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), False
    cookie = headers.get(b"cookie")
    if cookie:
        found = cookie_parser(cookie.decode("latin-1")).get(COOKIE, "")
        if found:
            return found, True
    return "", False


def _shape_problem(body: bytes) -> str | None:
    """Why a JSON body is refused before parsing it for real, or None."""
    if not body:
        return None
    try:
        value = json.loads(body)
    except RecursionError:
        return f"invalid request: the JSON body nests deeper than {MAX_DEPTH} levels"
    except ValueError:
        return None  # not JSON: the route says what it expected
    if too_deep(value):
        return f"invalid request: the JSON body nests deeper than {MAX_DEPTH} levels"
    return None


async def _read_all(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


def _counted(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return counted


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers") or [])
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in extra if k not in present]
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _answer(send: Send, status: int, detail: str, error: str | None) -> None:
    # A 401 says nothing but that: no hint whether the token was missing, wrong or revoked.
    body = json.dumps({"detail": detail, **({"error": error} if error else {})}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        # The body was not read: the connection cannot carry another request.
        (b"connection", b"close"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(request: Any, limit: int) -> bytes:
    """The whole body of a route that reads it raw, refused past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
