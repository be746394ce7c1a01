"""A listening socket for `kitaru server start` and `kitaru mcp serve --http`: bound
before the app starts, so port 0 can take a free port and the address can be printed."""

from __future__ import annotations

import socket

from kitaru._errors import ConfigurationError


def listen(host: str, port: int, *, backlog: int, other_port: str) -> tuple[socket.socket, str]:
    """A socket listening on `host:port` and the host as a URL writes it (an IPv6
    address in brackets). A port that cannot be bound raises `ConfigurationError`
    saying why, then `other_port` (how to pick another)."""
    ipv6 = ":" in host
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); {other_port}"
        ) from None
    sock.listen(backlog)
    return sock, f"[{host}]" if ipv6 else host
