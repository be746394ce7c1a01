"""Riding out a journal's bad minutes: transient errors retried, never a write twice.

A journal method marked `@retried` runs once as written; the happy path pays a
`try`. When the backend says the trouble is transient (`SqlJournal._transient`: a
PostgreSQL connection lost, a server restarting or shutting down, a serialization
failure or deadlock; SQLite's `database is locked` past its busy timeout), the method
runs again after an exponential backoff with jitter (0.05 s doubling to 2 s), on a fresh
connection where the old one broke, until `KITARU_JOURNAL_RETRY_SECONDS` (60) have
passed since the first failure; then `JournalUnavailableError` says what failed.

A write whose acknowledgement was lost may have committed. Before running such a write
again, its `settled` check reads whether it did (the call row at its number with the
same key, status and end time; the execution already in the state the write set), and
returns that write's answer if so: nothing is committed twice.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from kitaru._errors import InvalidConfigurationError, JournalUnavailableError

if TYPE_CHECKING:
    from kitaru.journal._sql import SqlJournal

P = ParamSpec("P")
R = TypeVar("R")
J = TypeVar("J", bound="SqlJournal")

FIRST_DELAY = 0.05
MAX_DELAY = 2.0


class Unsettled:
    """What a `settled` check returns when the write did not happen: run it again."""


UNSETTLED = Unsettled()


def retry_seconds() -> float:
    """`KITARU_JOURNAL_RETRY_SECONDS`: how long transient journal errors are retried."""
    raw = os.environ.get("KITARU_JOURNAL_RETRY_SECONDS", "60").strip()
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise InvalidConfigurationError(
            f"KITARU_JOURNAL_RETRY_SECONDS={raw!r} is not a number of seconds; use 0 (no "
            "retries) or more (default 60)"
        )
    return value


def retried(
    settled: Callable[..., Any] | None = None,
) -> Callable[[Callable[Concatenate[J, P], R]], Callable[Concatenate[J, P], R]]:
    """Retry a journal method on transient errors; `settled(journal, *args, **kwargs)`
    tells, before a retry, whether a write already happened (its answer) or not
    (`UNSETTLED`)."""

    def wrap(fn: Callable[Concatenate[J, P], R]) -> Callable[Concatenate[J, P], R]:
        @functools.wraps(fn)
        def method(self: J, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(self, *args, **kwargs)
            except Exception as exc:
                if not self._transient(exc):
                    raise
                first = exc
            return ride_out(self, fn, settled, first, *args, **kwargs)

        return method

    return wrap


def ride_out(
    journal: J,
    fn: Callable[Concatenate[J, P], R],
    settled: Callable[..., Any] | None,
    first: Exception,
    /,
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """Run `fn` again until it answers, a non-transient error, or the window closes."""
    import random  # only once the journal has failed: opening one does not load it

    deadline = time.monotonic() + retry_seconds()
    delay = FIRST_DELAY
    last = first
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise JournalUnavailableError(
                f"the journal at {journal.url} did not answer for {retry_seconds():g} s "
                f"({describe(last)})"
            ) from None
        time.sleep(min(left, delay * random.uniform(0.5, 1.5)))
        delay = min(delay * 2, MAX_DELAY)
        try:
            journal._reconnect()
            if settled is not None:
                done = settled(journal, *args, **kwargs)
                if done is not UNSETTLED:
                    return done  # type: ignore[no-any-return]
            return fn(journal, *args, **kwargs)
        except Exception as exc:
            if not journal._transient(exc):
                raise
            last = exc


def describe(exc: BaseException) -> str:
    """The error on one line, as a database driver words it."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"
