"""What every request passes before a route sees it, cheapest refusal first.

1. The token: an API request (everything under /api/ but the signed webhooks) without a
   live token gets 401 before a byte of its body is read, so an unauthenticated client
   costs the server a header parse, whatever it sends. A webhook's signature (and its
   expiry), in its URL, is checked the same way: before its body is read.
2. The size: each route has a body limit (JSON routes a few MiB, artifact uploads the
   server's upload limit, webhooks and the UI's forms 64 KiB). A declared length over
   it is a 413 at once; a streamed body is counted and cut off at the limit. (The
   request line and headers are bounded before this, by kitaru/server/_http.py.)
3. The shape: a JSON body nested deeper than MAX_DEPTH is a 422 before any route parses
   it, so no request can make a parser or a later `json.dumps` recurse until it fails.
   So is one with a value no later answer can carry: `NaN`, `Infinity`, a number too
   large for a float (`1e999`), an integer past Python's digit limit, a lone UTF-16
   surrogate (`"\\ud800"`). The journal would store those, and every listing that
   includes the row would then fail to encode its answer, for every reader.
4. The answer: every response carries the security headers (no sniffing, no framing, no
   caching of API answers), as the UI pages do.

The caller it authenticated travels in the request's state (`kitaru_caller`); the
scope checks in kitaru/server/routes/_deps.py read it from there.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kitaru.server._state import ServerState

COOKIE = "kitaru_session"
KiB = 1024
UI_FORM_BYTES = 64 * KiB
# A webhook's body is the one JSON answer to a wait; larger values go through the API.
WEBHOOK_BYTES = 64 * KiB
# Bodies up to this size are checked on the event loop (a fraction of a millisecond);
# larger ones in a worker thread, so a few MiB of JSON never stall other requests.
INLINE_CHECK_BYTES = 64 * KiB
MAX_DEPTH = 64
HOOKS = "/api/v1/hooks/waits/"
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
    if path == "/metrics":
        return True
    return path.startswith("/api/") and not path.startswith("/api/v1/hooks/")


def body_limit(state: ServerState, path: str) -> int:
    if path.startswith("/api/v1/store/objects/"):
        return state.config.max_upload_bytes
    if path.startswith("/ui/"):
        return UI_FORM_BYTES
    if path.startswith("/api/v1/hooks/"):
        return WEBHOOK_BYTES
    return state.config.max_json_bytes


def signed_hook(state: ServerState, path: str, query: bytes) -> bool:
    """Whether a webhook request's URL carries a live signature for its wait (the route
    checks it again; this is so that an unsigned request costs no body read)."""
    from kitaru.server import _webhooks

    exec_id, sep, key = path.removeprefix(HOOKS).partition("/")
    if not path.startswith(HOOKS) or not sep or "/" in key:
        return False
    fields = parse_qs(query.decode("latin-1"))
    expires, sig = fields.get("expires", [""])[0], fields.get("sig", [""])[0]
    if not expires.isdigit() or not sig:
        return False
    return _webhooks.check(state.secret, exec_id, key, int(expires), sig)


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
        elif (
            path.startswith("/api/v1/hooks/")
            and scope["method"] in _BODY_METHODS
            and not signed_hook(self.state, path, scope.get("query_string", b""))
        ):
            await _answer(send, 401, "webhook signature invalid or expired", None)
            return
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
            if len(body) <= INLINE_CHECK_BYTES:
                reason = _shape_problem(body)
            else:
                reason = await run_in_threadpool(_shape_problem, body)
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


class _Unstorable(ValueError):
    """A JSON value the server would store but could not send back."""


def _no_constant(name: str) -> Any:
    raise _Unstorable(
        f"invalid request: {name} is not a JSON number; send finite numbers (or null)"
    )


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Unstorable(
            f"invalid request: the number {text[:40]} is out of range for a float; send a "
            "finite number (or the value as a string)"
        )
    return value


_strict_json = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite).decode
# A lone surrogate can only come as a \uD800-\uDFFF escape or as its (invalid) UTF-8
# bytes, which the json module lets through: look for either before walking the value.
_MAYBE_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(value: Any) -> bool:
    """Whether a string (or key) anywhere in `value` holds a lone surrogate (no recursion)."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _SURROGATE.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _shape_problem(body: bytes) -> str | None:
    """Why a JSON body is refused before parsing it for real, or None."""
    if not body:
        return None
    try:
        value = _strict_json(body.decode("utf-8", "surrogatepass"))
    except RecursionError:
        return f"invalid request: the JSON body nests deeper than {MAX_DEPTH} levels"
    except _Unstorable as exc:
        return str(exc)
    except json.JSONDecodeError:
        return None  # not JSON: the route says what it expected
    except ValueError as exc:  # not UTF-8, or an integer past Python's digit limit
        return f"invalid request: the body cannot be read as JSON text ({str(exc)[:120]})"
    # A value nests no deeper than the brackets its text opens (counted in C): most
    # bodies, a batch of commits included, need no walk.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH and too_deep(value):
        return f"invalid request: the JSON body nests deeper than {MAX_DEPTH} levels"
    if _MAYBE_SURROGATE.search(body) and _has_lone_surrogate(value):
        return (
            "invalid request: the body holds a lone UTF-16 surrogate (\\ud800-\\udfff "
            "without its pair), which is not text; send valid Unicode"
        )
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
