"""A local HTTP endpoint that records every request and answers from a route table, for
pointing official cloud client libraries at (Cloud Run, Container Apps)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


Reply = tuple[int, Any]
Route = Callable[[Call], Reply | None]


class Recorder:
    def __init__(self, route: Route) -> None:
        self.route = route
        self.calls: list[Call] = []
        self.url = ""

    def made(self) -> list[tuple[str, str]]:
        return [(c.method, c.path) for c in self.calls]


@contextmanager
def recording(route: Route) -> Iterator[Recorder]:
    recorder = Recorder(route)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parsed = urlparse(self.path)
            call = Call(
                self.command,
                parsed.path,
                parse_qs(parsed.query),
                json.loads(raw) if raw.strip() else None,
            )
            recorder.calls.append(call)
            reply = recorder.route(call) or (
                404,
                {"error": {"code": 404, "status": "NOT_FOUND", "message": "not found"}},
            )
            status, body = reply
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()
