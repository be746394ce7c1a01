"""Work that starts later, from one timer thread per process.

A run's heartbeat and its feed writer each need a thread of their own only once the run
has lasted a beat or a flush period; most runs of a script, and every empty one, end
before that. Starting a thread and joining it costs a run two trips through the OS
scheduler, which on a busy machine is most of what an empty execution costs, so those
threads are scheduled here and started only when they are due (a run that ended first
cancels them).

The timer only starts threads: it never calls the journal, so no slow call delays
another run's start.
"""

from __future__ import annotations

import heapq
import itertools
import os
import threading
import time
from collections.abc import Callable


class Later:
    """A call scheduled by `call`; `cancel()` drops it if it has not run yet."""

    __slots__ = ("due", "fn")

    def __init__(self, due: float, fn: Callable[[], object]) -> None:
        self.due = due
        self.fn: Callable[[], object] | None = fn

    def cancel(self) -> None:
        self.fn = None  # (the heap keeps the small entry until it is due)


_cond = threading.Condition()
_heap: list[tuple[float, int, Later]] = []
_order = itertools.count()
_thread: threading.Thread | None = None


def call(delay: float, fn: Callable[[], object]) -> Later:
    """Run `fn` on the timer thread in `delay` seconds, unless cancelled before."""
    global _thread
    later = Later(time.monotonic() + delay, fn)
    with _cond:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="kitaru-timer", daemon=True)
            _thread.start()
        heapq.heappush(_heap, (later.due, next(_order), later))
        if _heap[0][2] is later:
            _cond.notify()
    return later


def _run() -> None:
    while True:
        with _cond:
            while True:
                now = time.monotonic()
                if _heap and _heap[0][0] <= now:
                    later = heapq.heappop(_heap)[2]
                    fn, later.fn = later.fn, None
                    break
                _cond.wait(_heap[0][0] - now if _heap else None)
        if fn is not None:
            try:
                fn()
            except Exception:
                pass  # (what it starts reports its own failures)


def _after_fork() -> None:
    # A forked child has no timer thread, and the parent's runs are not its own.
    global _cond, _thread
    _cond = threading.Condition()
    _heap.clear()
    _thread = None


os.register_at_fork(after_in_child=_after_fork)
