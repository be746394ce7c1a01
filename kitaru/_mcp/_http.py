"""`kitaru mcp serve --http`: streamable HTTP behind a Kitaru API token."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer

from kitaru._listen import listen
from kitaru.journal import Journal


def caller_of(journal: Journal, header: str | None) -> Any:
    from kitaru.server import _tokens

    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return _tokens.verify(_tokens.token_store(journal), token.strip())


def serve_http(
    mcp: MCPServer[Any],
    journal: Journal,
    host: str,
    port: int,
    *,
    allowed_hosts: list[str],
    names: str,
) -> None:
    """Streamable HTTP at /mcp, behind a token check on every request (401 without a
    live Kitaru API token: not even the tool list is shown). Port 0 takes a free port;
    the address is printed once it is bound."""
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.responses import JSONResponse
    from starlette.types import ASGIApp, Receive, Scope, Send

    listener, shown = listen(
        host,
        port,
        backlog=128,
        other_port="pick another port with --http PORT (0 takes a free one) or another "
        "address with --host",
    )
    port = listener.getsockname()[1]
    hosts = [f"{shown}:{port}", shown, f"127.0.0.1:{port}", f"localhost:{port}", *allowed_hosts]
    security = TransportSecuritySettings(
        allowed_hosts=hosts, allowed_origins=[f"http://{h}" for h in hosts]
    )
    app = mcp.streamable_http_app(transport_security=security, host=host)

    def guarded(inner: ASGIApp) -> ASGIApp:
        async def check(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                caller = await anyio.to_thread.run_sync(
                    lambda: caller_of(journal, headers.get("authorization"))
                )
                if caller is None:
                    refuse = JSONResponse(
                        {"error": "a Kitaru API token is required: Authorization: Bearer kt_..."},
                        status_code=401,
                    )
                    await refuse(scope, receive, send)
                    return
            await inner(scope, receive, send)

        return check

    print(
        f"kitaru mcp: {names} at http://{shown}:{port}/mcp (Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    config = uvicorn.Config(guarded(app), log_level="warning")
    uvicorn.Server(config).run(sockets=[listener])
