"""The HTTP/1.1 protocol the server speaks, with a bound on each request's head.

A request's head (its request line and headers) is held in memory until it ends, and
nothing bounds it by default with uvicorn's fast parser (httptools): a client without
a token could keep connections open sending an endless header and grow the server by
whatever it sends. Here a head longer than MAX_HEAD_BYTES is answered 431 and its
connection closed, so each connection holds at most that much (plus one read) before
the guard (kitaru/server/_guard.py) sees the request at all.

Where httptools is not installed uvicorn uses h11, which enforces the same bound itself
(`h11_max_incomplete_event_size`).
"""

from __future__ import annotations

from typing import Any

KiB = 1024
# Browsers send a few KiB of headers; the largest cookie jars stay well under this.
MAX_HEAD_BYTES = 64 * KiB

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 40\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"the request line and headers are too long"
)


def protocol() -> Any:
    """The protocol for uvicorn's `http` setting: a class, or "h11" without httptools."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return "h11"

    class BoundedHead(HttpToolsProtocol):
        """httptools, counting the bytes of a request's head while it is incomplete."""

        _head_open = False  # a request has begun and its headers have not ended
        _began = False  # ...and it began in the chunk being parsed
        _head_bytes = 0
        _refused = False

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._began = False
            super().data_received(data)
            if not self._head_open:
                return
            # A head that began in this chunk is at most the chunk (the chunk may also
            # hold the end of the request before it); one that began earlier grew by it.
            self._head_bytes = len(data) if self._began else self._head_bytes + len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refused = True
                self.transport.write(_TOO_LARGE)
                self.transport.close()

        def on_message_begin(self) -> None:
            self._head_open = self._began = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._head_open = False
            super().on_headers_complete()

    return BoundedHead
