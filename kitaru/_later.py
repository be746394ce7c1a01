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
import math
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


class Stop:
    """A stop signal (`threading.Event`'s set, is_set, wait) for a thread that is only
    started if a run lasts: a flag until something waits on it. An Event is a condition
    variable made of three locks, which a run that never starts the thread pays for."""

    __slots__ = ("_event", "_lock", "_set")

    def __init__(self) -> None:
        self._set = False
        self._event: threading.Event | None = None
        self._lock = threading.Lock()

    def set(self) -> None:
        with self._lock:
            self._set = True
            if self._event is not None:
                self._event.set()

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        with self._lock:
            if self._set:
                return True
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        return event.wait(timeout)


_cond = threading.Condition()
_heap: list[tuple[float, int, Later]] = []
_order = itertools.count()
_thread: threading.Thread | None = None
# While calls keep coming (one went in within IDLE_SECONDS), the timer looks at its heap
# every TICK_SECONDS by itself, and a call runs at most that late: a loop of short runs,
# each scheduling and cancelling its threads, then wakes the timer (and takes the
# interpreter from the runs) a few times a second, not once a run. `_wake_at` is when
# the timer looks next, while it waits; a call due before then wakes it.
TICK_SECONDS = 0.05
IDLE_SECONDS = 1.0
_wake_at = math.inf
_last_call = -math.inf


def call(delay: float, fn: Callable[[], object]) -> Later:
    """Run `fn` on the timer thread in `delay` seconds (at most TICK_SECONDS later),
    unless cancelled before."""
    global _thread, _wake_at, _last_call
    now = time.monotonic()
    later = Later(now + delay, fn)
    with _cond:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="kitaru-timer", daemon=True)
            _thread.start()
        _last_call = now
        _drop_cancelled()
        heapq.heappush(_heap, (later.due, next(_order), later))
        if later.due < _wake_at:
            _wake_at = -math.inf  # (woken: it looks at the heap before it waits again)
            _cond.notify()
    return later


def _drop_cancelled() -> None:
    # (under _cond) Cancelled calls at the front go now, not when they would be due.
    while _heap and _heap[0][2].fn is None:
        heapq.heappop(_heap)


def _run() -> None:
    global _wake_at
    while True:
        with _cond:
            while True:
                _drop_cancelled()
                now = time.monotonic()
                if _heap and _heap[0][0] <= now:
                    later = heapq.heappop(_heap)[2]
                    fn, later.fn = later.fn, None
                    break
                wake = _heap[0][0] if _heap else math.inf
                if now - _last_call < IDLE_SECONDS:
                    wake = min(wake, now + TICK_SECONDS)
                _wake_at = wake
                _cond.wait(None if wake == math.inf else wake - now)
                _wake_at = -math.inf
        if fn is not None:
            try:
                fn()
            except Exception:
                pass  # (what it starts reports its own failures)


def _after_fork() -> None:
    # A forked child has no timer thread, and the parent's runs are not its own.
    global _cond, _thread, _wake_at, _last_call
    _cond = threading.Condition()
    _heap.clear()
    _thread = None
    _wake_at = math.inf
    _last_call = -math.inf


os.register_at_fork(after_in_child=_after_fork)
