"""`kitaru.sleep()`: a durable pause until a time, holding no process.

A sleep is a wait that nobody answers (kitaru/_wait.py): the first time the flow
reaches it, the wake time is computed once and recorded as the wait's timeout, the
execution becomes `waiting` and the flow unwinds. Whatever continues waits past their
timeout continues it once the time has passed: `kitaru executions sweep`, a server's
sweeper, a worker for executions of its queues, or `kitaru executions resume`. The
resumed flow reads the recorded wake time back (never computes it again, so a replay or
a resume at another clock sleeps to the same instant), and this call returns. Resumed
before the time, it unwinds again: the execution keeps sleeping.

A sleep's record carries `{"sleep": true}` in its metadata: views show it as sleeping
until its wake time, and `kitaru executions input` refuses to answer it.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta

from kitaru import _runtime
from kitaru._errors import ExecutionSuspended, KitaruUsageError
from kitaru.journal import WaitRecord

SLEEP = "sleep"  # the metadata flag that makes a wait a sleep


def is_sleep(wait: WaitRecord) -> bool:
    return bool(wait.metadata.get(SLEEP))


def wake_time(seconds: float | timedelta | None, until: datetime | None, now: float) -> float:
    """The instant a sleep ends, as a POSIX timestamp."""
    if (seconds is None) == (until is None):
        raise KitaruUsageError(
            "kitaru.sleep() takes a duration or until=, not both and not neither: "
            "kitaru.sleep(30), kitaru.sleep(timedelta(hours=1)) or kitaru.sleep(until=when)"
        )
    if until is not None:
        if not isinstance(until, datetime):
            raise KitaruUsageError(f"until= must be a datetime, not {type(until).__name__}")
        if until.tzinfo is None:
            raise KitaruUsageError(
                f"until={until.isoformat()} has no time zone, so the instant it names depends "
                "on the machine that resumes the flow; give one: datetime(..., tzinfo=UTC)"
            )
        return until.timestamp()
    delay = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
        raise KitaruUsageError(f"a sleep takes seconds of 0 or more, not {seconds!r}")
    return now + float(delay)


def sleep(
    seconds: float | timedelta | None = None,
    *,
    until: datetime | None = None,
    name: str = "sleep",
) -> None:
    """Pause the execution for `seconds` (or until the aware datetime `until`) without
    holding a process: the execution becomes `waiting` and the process is free to exit.

    A sweep (`kitaru executions sweep`, a server) or a worker continues it once the time
    has passed; `kitaru executions resume` before then leaves it sleeping. Outside a flow
    this is `time.sleep`. Sleeps are keyed like waits: `sleep`, `sleep#2`, ... or by
    `name`."""
    ctx = _runtime.current()
    if ctx is None:
        wake = wake_time(seconds, until, time.time())
        time.sleep(max(0.0, wake - time.time()))
        return
    if _runtime.current_frame.get() is not None:
        raise KitaruUsageError(
            "kitaru.sleep() was called inside a checkpoint; call it from the flow body, "
            "between checkpoints"
        )
    if not isinstance(name, str) or not name or "#" in name or name != name.strip():
        raise KitaruUsageError(f"sleep name {name!r} is not valid; use a name without '#'")
    key, seq = ctx.next_wait(name)
    record = ctx.waits.get(key)
    now = time.time()
    if record is not None and not is_sleep(record):
        raise KitaruUsageError(
            f"{key!r} of execution {ctx.exec_id} is a wait in the journal, but the flow now "
            f"sleeps there; give the sleep its own name: kitaru.sleep(..., name='pause')"
        )
    if record is None:
        wake = wake_time(seconds, until, now)
        caller = sys._getframe(1)
        record = WaitRecord(
            exec_id=ctx.exec_id,
            key=key,
            name=name,
            seq=seq,
            question=None,
            schema={"type": "any"},
            created_at=now,
            timeout_at=wake,
            default=None,
            has_default=True,
            call_site=f"{caller.f_code.co_filename}:{caller.f_lineno}",
            metadata={SLEEP: True},
        )
        ctx.journal.create_wait(record, owner=ctx.owner)
        ctx.waits[key] = record
        ctx.feed.add("wait", key, None, {"sleep": True, "timeout_at": wake})
    if record.status == "answered":
        return
    assert record.timeout_at is not None
    if now >= record.timeout_at:
        artifact = ctx.artifact(
            None,
            name=key,
            producer="wait",
            producer_key=key,
            what=f"sleep {key!r}",
            metadata={"timed_out": True, SLEEP: True},
        )
        ctx.journal.answer_wait(ctx.exec_id, key, artifact, now=now)
        if ctx.trace is not None:
            ctx.trace.wait(key, "woke")
        return
    if ctx.trace is not None:
        ctx.trace.wait(key, "sleeping")
    raise ExecutionSuspended(ctx.exec_id, key)


def sleeping_until(waits: list[WaitRecord]) -> float | None:
    """When an execution whose only pending waits are sleeps wakes; None otherwise."""
    pending = [w for w in waits if w.status == "pending"]
    if not pending or not all(is_sleep(w) and w.timeout_at is not None for w in pending):
        return None
    return min(w.timeout_at for w in pending if w.timeout_at is not None)
