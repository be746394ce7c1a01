"""One HTTP connection pool per server, with the API token, and errors in Kitaru's terms."""

from __future__ import annotations

import os
import threading
from typing import Any, NoReturn

from kitaru._errors import (
    ArtifactCorruptedError,
    ConfigurationError,
    InvalidInputError,
    KitaruError,
    KitaruUsageError,
    LeaseError,
    NonDeterminismError,
    NotFoundError,
    SerializationError,
)

API = "/api/v1"


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ConfigurationError(
            "talking to a Kitaru server (KITARU_SERVER_URL) needs httpx; install it with: "
            'pip install "kitaru[server]"'
        ) from None
    return httpx


class Connection:
    """The server at `url`, reached with `token`."""

    def __init__(self, url: str, token: str) -> None:
        httpx = _httpx()
        from kitaru._version import __version__

        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"kitaru/{__version__}"},
            timeout=httpx.Timeout(60.0, connect=10.0),
            # Retries only failed connection attempts: a request that reached the server
            # is never sent twice.
            transport=httpx.HTTPTransport(retries=3),
        )
        self._info: dict[str, Any] | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        ok: tuple[int, ...] = (200,),
    ) -> Any:
        httpx = _httpx()
        try:
            response = self._http.request(
                method, API + path, json=json, content=content, params=params
            )
        except httpx.TransportError as exc:
            raise ConfigurationError(
                f"cannot reach the Kitaru server at {self.url} ({type(exc).__name__}: {exc}); "
                "check KITARU_SERVER_URL and that the server is running"
            ) from None
        if response.status_code not in ok:
            fail(self.url, response.status_code, _detail(response))
        return response

    def info(self) -> dict[str, Any]:
        """What the server says about itself (checked once per process)."""
        if self._info is None:
            self._info = dict(self.request("GET", "/info").json())
        return self._info

    def close(self) -> None:
        self._http.close()


def _detail(response: Any) -> tuple[str, str | None]:
    """(message, Kitaru error class name if the server named one)."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300], None
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
        raise ConfigurationError(
            f"the Kitaru server at {url} refused the request: {message}; this needs a token "
            "with --scope write"
        )
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
    if not url:
        raise ConfigurationError(
            "no Kitaru server configured; set KITARU_SERVER_URL (and KITARU_API_TOKEN)"
        )
    token = os.environ.get("KITARU_API_TOKEN", "")
    if not token:
        raise ConfigurationError(
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
