"""Following an execution's live feed until it ends or waits (`watch`, `logs --follow`).

Each poll reads the execution's status first and its feed entries second. A run writes
its last entries before its status changes (kitaru/_events.py), so when the status read
says the execution ended or waits, the entries read after it are all there are: the
follower stops with nothing left out. Works on any journal: the embedded one, a
PostgreSQL journal, or a server's (one GET for the record, one for the entries).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from kitaru import _lease
from kitaru._errors import NotFoundError
from kitaru.journal import EventRecord, Journal

PAGE = 1000
# Where a follower stops: the execution ended, or waits for input.
STOPS = frozenset({"completed", "failed", "cancelled", "crashed", "waiting"})


@dataclass(frozen=True, slots=True)
class Ending:
    status: str
    error: str | None
    ended_at: float | None


def follow(
    journal: Journal, exec_id: str, *, after: int = 0, poll: float = 0.2
) -> Iterator[EventRecord | Ending]:
    """Every feed entry after `after` as it is stored, then the `Ending`."""
    while True:
        record = journal.get_execution(exec_id)
        if record is None:
            raise NotFoundError(
                f"execution {exec_id} not found; list them with `kitaru executions list`"
            )
        status = _lease.effective_status(record.status, record.owner, record.lease_until)
        while True:
            rows = journal.events(exec_id, after=after, limit=PAGE)
            yield from rows
            if rows:
                after = rows[-1].seq
            if len(rows) < PAGE:
                break
        if status in STOPS:
            yield Ending(status, record.error, record.ended_at)
            return
        time.sleep(poll)
