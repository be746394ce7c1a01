"""Requests to a Kitaru server with the API token, and its errors in Kitaru's terms.

The standard library's http.client, not a third-party client: a CLI command or a
container that talks to a server starts as fast as one that opens a journal.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlencode, urlsplit

from kitaru._errors import (
    ArtifactCorruptedError,
    ConfigurationError,
    InvalidConfigurationError,
    InvalidInputError,
    KitaruError,
    KitaruUsageError,
    LeaseError,
    NonDeterminismError,
    NotFoundError,
    SerializationError,
    ServerUnreachableError,
)

TIMEOUT = 120.0
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

API = "/api/v1"

# A server that restarts (a rolling update, a crash) refuses connections for a while:
# every request waits for it up to KITARU_SERVER_RETRY_SECONDS, so running executions
# ride it out. What is retried is only what cannot have been carried out twice:
# - a connection attempt that failed (nothing was sent);
# - a keep-alive connection the server had closed, failing on first use before any
#   answer (the server closes idle connections between requests, never mid-request);
# - a 503 for a request that changes nothing or is idempotent (GET, HEAD, PUT, DELETE),
#   and such a request whose answer was lost (a reset, a timeout): sending it again
#   does what sending it once did.
# A request that reached the server and lost its answer is not sent again here: the
# caller sees ServerUnreachableError (a checkpoint commit reads its call back first and
# is sent again only if it did not land: kitaru/journal/_http_requests.py).
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
_IDEMPOTENT = ("GET", "HEAD", "PUT", "DELETE")
DEFAULT_RETRY_SECONDS = 30.0


def retry_seconds() -> float:
    raw = os.environ.get("KITARU_SERVER_RETRY_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_RETRY_SECONDS
    except ValueError:
        raise ConfigurationError(
            f"KITARU_SERVER_RETRY_SECONDS={raw!r} is not a number of seconds"
        ) from None


class _OneWrite(http.client.HTTPConnection):
    """A request's head and its (bytes) body in one write: http.client writes them
    apart, and the server then wakes twice per request (once for a head with no body)."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if not isinstance(message_body, bytes):
            super()._send_output(message_body, encode_chunked)  # type: ignore[misc]
            return
        buffer: list[bytes] = self._buffer  # type: ignore[attr-defined]
        buffer.extend((b"", b""))
        head = b"\r\n".join(buffer)
        del buffer[:]
        self.send(head + message_body)


class _HTTP(_OneWrite):
    pass


class _HTTPS(_OneWrite, http.client.HTTPSConnection):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    content: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.content)


class Connection:
    """The server at `url`, reached with `token`; one keep-alive connection per thread."""

    def __init__(self, url: str, token: str) -> None:
        from kitaru._version import __version__

        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"KITARU_SERVER_URL={url!r} is not an http(s):// URL of a Kitaru server"
            )
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "User-Agent": f"kitaru/{__version__}",
            "Accept": "application/json",
        }
        self._local = threading.local()
        self._info: dict[str, Any] | None = None

    def _new(self) -> http.client.HTTPConnection:
        if self._https:
            return _HTTPS(self._host, self._port, timeout=TIMEOUT)
        return _HTTP(self._host, self._port, timeout=TIMEOUT)

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | memoryview | None = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
        content_type: str = "application/octet-stream",
    ) -> Response:
        target = self._prefix + API + path
        if params:
            target += "?" + urlencode({k: v for k, v in params.items() if v is not None})
        headers = dict(self._headers)
        body = content
        if json is not None:
            body = _dumps(json).encode()
            headers["Content-Type"] = "application/json"
        elif content is not None:
            headers["Content-Type"] = content_type
        response = self._send(method, target, body, headers)
        if response.status_code not in ok:
            fail(self.url, response.status_code, _detail(response))
        return response

    def _send(
        self, method: str, target: str, body: bytes | memoryview | None, headers: dict[str, str]
    ) -> Response:
        deadline = time.monotonic() + retry_seconds()
        pause = 0.05
        last: BaseException | None = None
        while True:
            conn = getattr(self._local, "conn", None)
            reused = conn is not None
            sent = False
            try:
                if conn is None:
                    conn = self._local.conn = self._new()
                    conn.connect()
                sent = True
                conn.request(method, target, body=body, headers=headers)
                raw = conn.getresponse()
                data = raw.read()
            except _STALE as exc:
                self._drop()
                last = exc
                if sent and not reused and method not in _IDEMPOTENT:
                    break  # it may have reached the server: not sent again
            except OSError as exc:
                self._drop()
                last = exc
                if sent and method not in _IDEMPOTENT:
                    break
            else:
                if raw.will_close:
                    self._drop()
                response = Response(raw.status, data, {k.lower(): v for k, v in raw.getheaders()})
                if response.status_code != 503 or method not in _IDEMPOTENT:
                    return response
                if time.monotonic() + pause > deadline:
                    return response
                last = None
            if time.monotonic() + pause > deadline:
                break
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
        raise ServerUnreachableError(
            f"cannot reach the Kitaru server at {self.url} ({type(last).__name__}: {last}); "
            "check KITARU_SERVER_URL and that the server is running (waited "
            f"{retry_seconds():g} s: KITARU_SERVER_RETRY_SECONDS)"
        )

    def info(self) -> dict[str, Any]:
        """What the server says about itself (checked once per process)."""
        if self._info is None:
            self._info = dict(self.request("GET", "/info").json())
        return self._info

    def close(self) -> None:
        self._drop()


def _detail(response: Response) -> tuple[str, str | None]:
    """(message, Kitaru error class name if the server named one)."""
    try:
        body = response.json()
    except ValueError:
        return response.content.decode(errors="replace").strip()[:300], None
    if not isinstance(body, dict):
        return str(body), None
    detail = body.get("detail")
    kind = body.get("error")
    return (detail if isinstance(detail, str) else str(detail)), (
        kind if isinstance(kind, str) else None
    )


_ERRORS: dict[str, type[KitaruError]] = {
    cls.__name__: cls
    for cls in (
        NotFoundError,
        InvalidInputError,
        KitaruUsageError,
        LeaseError,
        ConfigurationError,
        ArtifactCorruptedError,
        NonDeterminismError,
        SerializationError,
    )
}


def fail(url: str, status: int, detail: tuple[str, str | None]) -> NoReturn:
    message, kind = detail
    if status == 401:
        raise ConfigurationError(
            f"the Kitaru server at {url} refused the API token ({message}); set "
            "KITARU_API_TOKEN to a token from `kitaru server token create`"
        )
    if status == 403:
        raise ConfigurationError(f"the Kitaru server at {url} refused the request: {message}")
    if kind in _ERRORS:
        raise _ERRORS[kind](message)
    if status == 404:
        raise NotFoundError(message)
    if status in (409, 413):
        raise KitaruUsageError(message)
    if status == 422:
        raise InvalidInputError(message)
    raise KitaruError(f"the Kitaru server at {url} answered {status}: {message}")


_connections: dict[tuple[str, str], Connection] = {}
_lock = threading.Lock()


def connect(url: str | None = None) -> Connection:
    """The connection to `url` (default KITARU_SERVER_URL) with KITARU_API_TOKEN."""
    url = (url or os.environ.get("KITARU_SERVER_URL") or "").rstrip("/")
    # Nothing was tried without these: the fix is in the settings (exit code 2).
    if not url:
        raise InvalidConfigurationError(
            "no Kitaru server configured; set KITARU_SERVER_URL (and KITARU_API_TOKEN)"
        )
    token = os.environ.get("KITARU_API_TOKEN", "")
    if not token:
        raise InvalidConfigurationError(
            f"KITARU_SERVER_URL is {url} but KITARU_API_TOKEN is not set; create a token with "
            "`kitaru server token create --scope write` on the server's journal and export it"
        )
    with _lock:
        conn = _connections.get((url, token))
        if conn is None:
            conn = _connections[(url, token)] = Connection(url, token)
        return conn


def reset_for_tests() -> None:
    with _lock:
        for conn in _connections.values():
            conn.close()
        _connections.clear()


def server_artifact_store() -> str:
    """The root URI of the store the server keeps artifacts in (its default store)."""
    return str(connect().info()["artifact_store"])
