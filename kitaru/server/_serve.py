"""`kitaru server start`: bind, say where, serve until interrupted."""

from __future__ import annotations

import dataclasses
import logging
import re
import sys

from kitaru._listen import listen
from kitaru.server._state import ServerConfig


class HideSignatures(logging.Filter):
    """Access log lines without query strings of webhook URLs: their `sig` answers a wait."""

    _HOOK = re.compile(r"^(/api/v1/hooks/[^?]*)\?.*$")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path = self._HOOK.sub(r"\1?<signature hidden>", args[2])
            record.args = (*args[:2], path, *args[3:])
        return True


def own_url(host: str, port: int) -> str | None:
    """The URL the server is reached at when it listens on one address; None for the
    wildcard addresses, where only --public-url can say."""
    if host in ("0.0.0.0", "::", ""):
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(config: ServerConfig, *, host: str, port: int, log_level: str, access_log: bool) -> None:
    import uvicorn

    from kitaru.server import _http
    from kitaru.server._app import create_app

    sock, shown = listen(
        host, port, backlog=2048, other_port="choose another --port (0 picks a free one)"
    )
    bound = sock.getsockname()[1]
    if config.public_url is None:
        config = dataclasses.replace(config, public_url=own_url(host, bound))
    app = create_app(config)
    logging.getLogger("uvicorn.access").addFilter(HideSignatures())
    state = app.state.kitaru
    # Tests and scripts read this line to learn the port (--port 0 picks a free one).
    print(
        f"kitaru server listening on http://{shown}:{bound} "
        f"(journal {state.journal.url}, artifacts {state.default_store.uri})",
        flush=True,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            access_log=access_log,
            proxy_headers=True,
            timeout_graceful_shutdown=5,
            # Clients keep one connection per thread; a flow's heartbeat comes every 10 s.
            timeout_keep_alive=75,
            # A request's head is held until it ends: bounded, whatever the parser.
            http=_http.protocol(),
            h11_max_incomplete_event_size=_http.MAX_HEAD_BYTES,
        )
    )
    server.run(sockets=[sock])
    sys.stdout.flush()
