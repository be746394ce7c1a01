"""Processes forked to do one thing at the same moment: each waits at a barrier, so the
window a race needs (microseconds) is met in a few rounds."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

_fork = multiprocessing.get_context("fork")


def at_once(target: Callable[..., None], args: Sequence[tuple[Any, ...]]) -> list[int | None]:
    """Run `target(*each, start)` in one forked process per `each` in `args`, all released
    by the barrier `start` they wait at; their exit codes (a stuck one is terminated
    after 60 s)."""
    start = _fork.Barrier(len(args))
    procs = [_fork.Process(target=target, args=(*each, start), daemon=True) for each in args]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(60)
    finally:
        for proc in procs:
            proc.terminate()
    return [proc.exitcode for proc in procs]
