"""Capturing what an execution prints and logs, per checkpoint call.

While any execution runs in this process, `sys.stdout` and `sys.stderr` are wrapped
in a tee that still writes to the terminal and also appends to the buffer of the
checkpoint call running in the current context (or the execution's own buffer
outside checkpoints). A root-logger handler does the same for `logging` records.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

from kitaru.journal import LogRecord

if TYPE_CHECKING:
    import logging
    from collections.abc import Callable


class LogBuffer:
    __slots__ = ("call_key", "exec_id", "live", "records", "run")

    def __init__(
        self,
        exec_id: str,
        call_key: str | None,
        run: int,
        live: Callable[[str | None, str, str], None] | None = None,
    ) -> None:
        self.exec_id = exec_id
        self.call_key = call_key
        self.run = run
        self.records: list[LogRecord] = []
        # The run's live feed (kitaru/_events.py): the same text, as it is printed.
        self.live = live

    def add(self, stream: str, text: str) -> None:
        if self.live is not None:
            self.live(self.call_key, stream, text)
        records = self.records
        if records and records[-1].stream == stream and not records[-1].text.endswith("\n"):
            records[-1].text += text
        else:
            records.append(
                LogRecord(self.exec_id, self.call_key, self.run, time.time(), stream, text)
            )

    def take(self) -> list[LogRecord]:
        records, self.records = self.records, []
        return records


current_buffer: contextvars.ContextVar[LogBuffer | None] = contextvars.ContextVar(
    "kitaru_log_buffer", default=None
)


class _Tee(io.TextIOBase):
    def __init__(self, inner: TextIO, stream: str) -> None:
        self.inner = inner
        self.stream = stream

    def write(self, s: str) -> int:
        buf = current_buffer.get()
        if buf is not None and s:
            buf.add(self.stream, s)
        return self.inner.write(s)

    def flush(self) -> None:
        # Also what finalizing a tee does (IOBase closes, so flushes): a tee let go of
        # when its stream was swapped (a test runner's capture) may outlive that stream.
        if not getattr(self.inner, "closed", False):
            self.inner.flush()

    def isatty(self) -> bool:
        return self.inner.isatty()

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.inner.encoding

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _make_handler() -> logging.Handler:
    # logging is imported when the first execution starts, not with kitaru.
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            buf = current_buffer.get()
            if buf is not None:
                try:
                    buf.add("log", self.format(record) + "\n")
                except Exception:
                    self.handleError(record)

    handler = Handler(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return handler


def _tee(inner: TextIO, stream: str) -> _Tee:
    """The tee of `inner`, kept while `inner` stays the stream: a tee is an IO object,
    whose making and finalizing cost a run more than all its other bookkeeping."""
    kept = _tees.get(stream)
    if kept is None or kept.inner is not inner:
        kept = _tees[stream] = _Tee(inner, stream)
    return kept


def _flush(stream: TextIO) -> None:
    with contextlib.suppress(OSError, ValueError):  # closed, or a pipe gone
        stream.flush()


_tees: dict[str, _Tee] = {}
_users = 0
_users_lock = threading.Lock()
_handler: logging.Handler | None = None


def install() -> None:
    """Start capturing (reference counted: nested and concurrent executions share it)."""
    global _users, _handler
    import logging

    with _users_lock:
        if _handler is None:
            _handler = _make_handler()
        _users += 1
        if _users == 1:
            if not isinstance(sys.stdout, _Tee):
                sys.stdout = _tee(sys.stdout, "stdout")
            if not isinstance(sys.stderr, _Tee):
                sys.stderr = _tee(sys.stderr, "stderr")
            # Records reach the handler at the levels the user configured; Kitaru does
            # not lower them, so nothing new appears on the user's own handlers.
            logging.getLogger().addHandler(_handler)


def uninstall() -> None:
    global _users
    import logging

    with _users_lock:
        _users -= 1
        if _users == 0:
            # (What a tee's finalizer did when each run made its own: the streams are
            # flushed as the run lets go of them.)
            if isinstance(sys.stdout, _Tee):
                sys.stdout = sys.stdout.inner
                _flush(sys.stdout)
            if isinstance(sys.stderr, _Tee):
                sys.stderr = sys.stderr.inner
                _flush(sys.stderr)
            if _handler is not None:
                logging.getLogger().removeHandler(_handler)
