"""The live feed of executions in the SQL journals (schema version 7).

Only the process holding an execution's lease appends to its feed, one batch at a time
(kitaru/_events.py has one writer per run), and the journal numbers the entries: the
batch takes the numbers after the execution's largest, in the transaction that stores
it. Entries therefore become visible in the order of their numbers, and a reader that
has seen entry N (an SSE client's `Last-Event-ID`) reads on with `seq > N`, missing none
and repeating none.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from kitaru.journal._records import EventRecord

# What an entry is; `event` is a flow's own (`kitaru.emit`), the rest Kitaru writes.
KINDS = (
    "event", "call_started", "call_ended", "calls_ended", "output", "wait", "run_started",
    "run_ended",
)  # fmt: skip
# An entry's data as JSON text is at most this many bytes (UTF-8), and its name this
# many characters: a feed is for progress and partial results; values go in artifacts.
DATA_MAX_BYTES = 16 * 1024
NAME_MAX = 200
# The run of the entries a replay copied from its source (the events of the calls it
# reuses): they happened before the replay's first run, in the source.
REUSED_RUN = 0
# The most entries one append stores (a run's writer sends smaller batches).
BATCH_MAX = 1000

EVENT_COLS = "exec_id, seq, run, ts, kind, name, call_key, data"
_INSERT = f"INSERT INTO events ({EVENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class EventRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks."""

    # Locks the execution's row until the batch commits (PostgreSQL); SQLite's
    # transactions already hold the database's one write lock.
    FOR_UPDATE: ClassVar[str] = ""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _many(self, conn: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def append_events(
        self, exec_id: str, events: Sequence[EventRecord], *, owner: str, again: bool = False
    ) -> bool:
        if not events:
            return True
        with self._tx() as conn:
            held = conn.execute(
                self._sql(
                    "SELECT 1 FROM executions WHERE exec_id = ? AND owner = ?" + self.FOR_UPDATE
                ),
                (exec_id, owner),
            ).fetchone()
            if held is None:
                return False
            self._store_events(conn, exec_id, events, again=again)
        return True

    def _store_events(
        self, conn: Any, exec_id: str, events: Sequence[EventRecord], *, again: bool = False
    ) -> None:
        """Within the transaction `conn`, whose caller checked the lease: the entries,
        numbered after the feed's last (also the end of a run, with `finish`)."""
        last = int(
            conn.execute(
                self._sql("SELECT MAX(seq) FROM events WHERE exec_id = ?"), (exec_id,)
            ).fetchone()[0]
            or 0
        )
        if again:
            events = self._not_stored(conn, exec_id, events, last)
        first = last + 1
        rows = [
            (exec_id, first + i, e.run, e.ts, e.kind, e.name, e.call_key, _dump(e.data))
            for i, e in enumerate(events)
        ]
        self._many(conn, self._sql(_INSERT), rows)

    def _not_stored(
        self, conn: Any, exec_id: str, events: Sequence[EventRecord], last: int
    ) -> list[EventRecord]:
        """The entries of a batch sent again that its lost first send did not store. One
        writer appends at a time, so what a lost send stored is among the last entries:
        a short read of the feed's tail by number. An entry is told by all it holds (two
        pieces of one long output share their time, kind, name and call)."""
        stored = {
            tuple(row)
            for row in conn.execute(
                self._sql(
                    "SELECT run, ts, kind, name, call_key, data FROM events "
                    "WHERE exec_id = ? AND seq > ?"
                ),
                (exec_id, last - 2 * len(events)),
            ).fetchall()
        }
        return [
            e
            for e in events
            if (e.run, e.ts, e.kind, e.name, e.call_key, _dump(e.data)) not in stored
        ]

    def _copy_events(
        self, conn: Any, source: str, target: str, before_seq: int, overridden: Collection[str]
    ) -> None:
        """Replay: the events (`kitaru.emit`) that the source's calls the replay reuses
        (completed before `before_seq`, not `overridden`) emitted, appended to the
        target's feed as run 0 (`EventRecord.reused`), in the source's order and with its
        times. Made once, when the replay is recorded, so that neither the replay's runs
        nor its readers look at the source again."""
        rows = conn.execute(
            self._sql(
                "SELECT ts, name, call_key, data FROM events "
                "WHERE exec_id = ? AND kind = 'event' AND call_key IS NOT NULL ORDER BY seq"
            ),
            (source,),
        ).fetchall()
        if not rows:
            return  # most flows emit nothing: the calls' keys are not even read
        keys = {
            key
            for (key,) in conn.execute(
                self._sql(
                    "SELECT key FROM calls WHERE exec_id = ? AND seq < ? AND status = 'completed'"
                ),
                (source, before_seq),
            ).fetchall()
        } - set(overridden)
        picked = [r for r in rows if r[2] in keys]
        if not picked:
            return
        last = conn.execute(
            self._sql("SELECT MAX(seq) FROM events WHERE exec_id = ?"), (target,)
        ).fetchone()[0]
        first = int(last or 0) + 1
        self._many(
            conn,
            self._sql(_INSERT),
            [
                (target, first + i, REUSED_RUN, ts, "event", name, key, data)
                for i, (ts, name, key, data) in enumerate(picked)
            ],
        )

    def events(self, exec_id: str, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        rows = self._x(
            f"SELECT {EVENT_COLS} FROM events WHERE exec_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (exec_id, after, limit),
        ).fetchall()
        found = [
            EventRecord(e, seq, run, ts, kind, name, key, json.loads(data) if data else None)
            for (e, seq, run, ts, kind, name, key, data) in rows
        ]
        self._expand(exec_id, [e for e in found if e.kind == "calls_ended"])
        return found

    def _expand(self, exec_id: str, entries: list[EventRecord]) -> None:
        """`calls_ended` entries store the numbers of the calls they list (kitaru/_events.py
        writes them on every checkpoint's path, so they carry nothing more); a reader gets
        each call's details, from the calls table, as `{"calls": [...]}`."""
        wanted = [
            (e, [s for s in e.data["seqs"] if type(s) is int])
            for e in entries
            if isinstance(e.data, dict) and isinstance(e.data.get("seqs"), list)
        ]
        numbers = [s for _, seqs in wanted for s in seqs]
        if not numbers:
            return
        rows = self._x(
            "SELECT seq, key, name, status, kind, attempts, started_at, ended_at, error, run "
            "FROM calls WHERE exec_id = ? AND seq BETWEEN ? AND ?",
            (exec_id, min(numbers), max(numbers)),
        ).fetchall()
        calls = {row[0]: row for row in rows}
        for entry, seqs in wanted:
            listed = []
            for seq in seqs:
                row = calls.get(seq)
                if row is None or row[9] != entry.run:
                    continue  # not this run's commit (a malformed entry): nothing to show
                _, key, name, status, kind, attempts, started, ended, error, _ = row
                listed.append(
                    {
                        "key": key, "name": name, "started_at": started, "status": status,
                        "kind": kind, "attempts": attempts,
                        "duration_s": round(ended - started, 6),
                        "error": error[:200] if error else None,
                    }
                )  # fmt: skip
            entry.data = {"calls": listed}


# One encoder for every row: `json.dumps` with options builds a new one per call, which
# cost half of an append.
_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _dump(data: Any) -> str | None:
    return None if data is None else _ENCODE(data)
