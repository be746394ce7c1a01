"""The live feed of an execution: `kitaru.emit`, and what `watch` and the SSE stream show.

While a run goes, its feed gets an entry (`EventRecord`) for each of these, in order:
`run_started`; `call_started` for a checkpoint call still running when the writer next
writes, or that emits (a call read back from the journal does not run, and gets none);
`output` as the run prints and logs (coalesced, the same text `kitaru executions logs`
shows per call); `event` for each `kitaru.emit(name, data)`; `call_ended` once a call
that got a `call_started`, or that failed, is committed; `calls_ended` for the fast
completed calls in between, by number (readers get their details from the calls table);
`wait` when the flow reaches a wait with no answer; `run_ended` with the run's status,
before the execution's status changes. The journal numbers the entries
(kitaru/journal/_events.py).

Entries are written by one daemon thread per run, every FLUSH_SECONDS, in batches, so a
checkpoint call pays a dict entry as it starts and a deque append (no lock) as it ends,
not a journal write nor JSON (the per-checkpoint overhead `make bench` measures). Two points are written at once
instead: a checkpoint call that emitted events writes them before the call is
committed, so the events of a completed call are in the journal before it counts as done
and a resume (which reads the call back and does not run it) never emits them again; and
the run's last entries are written before its status changes, so a reader that sees the
execution ended has seen every entry. An attempt that fails and runs again emits again,
as it prints again. Emits in the flow body (outside checkpoints) happen on every run of
the body, like `kitaru.save` there. Call and output entries are written as soon as the
thread gets to them: a crashed process loses at most its last FLUSH_SECONDS of them (the
calls and logs tables stay the record).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import operator
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from kitaru import _later
from kitaru._errors import KitaruUsageError
from kitaru.journal._events import BATCH_MAX, DATA_MAX_BYTES, NAME_MAX
from kitaru.journal._records import CallRecord, EventRecord

if TYPE_CHECKING:
    from kitaru.journal import Journal

FLUSH_SECONDS = 0.1
# Entries a run holds before `emit` writes them itself; output past this is not kept
# for the feed (it is still in the call's logs) and an entry says how much was left out.
PENDING_MAX = 5000
# Characters of output per entry: escaped as JSON, within DATA_MAX_BYTES.
OUTPUT_CHARS = 2000
# Fast calls listed in one `calls_ended` entry (by their numbers: a few bytes each).
FOLD_MAX = 500


def emit(name: str, data: Any = None) -> None:
    """Record an event on the running execution's live feed: progress, a partial result.

    `data` is JSON (dicts, lists, strings, numbers, booleans, None; pydantic models and
    dataclasses become their JSON form) of at most 16 KiB encoded; `name` is 1-200
    characters. Inside a checkpoint the event belongs to that call and is stored before
    the call completes; a resumed execution does not emit again the events of calls it
    reads back. Outside a flow, `emit` does nothing, so code that reports progress runs
    unchanged in tests and scripts. `kitaru executions watch <id>` shows events as they
    happen; the server streams them (GET /api/v1/executions/{id}/events).
    """
    from kitaru import _runtime

    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX:
        raise KitaruUsageError(f"kitaru.emit() needs a name of 1-{NAME_MAX} characters")
    value = json_data(data, what=f"kitaru.emit({name!r})")
    ctx = _runtime.current()
    if ctx is None:
        return
    frame = _runtime.current_frame.get()
    if frame is not None:
        frame.emitted = True
    ctx.feed.add("event", name, frame.key if frame else None, value)


def json_data(data: Any, *, what: str) -> Any:
    """`data` as plain JSON, refused when it is not JSON or larger than DATA_MAX_BYTES."""
    if hasattr(data, "model_dump"):
        data = data.model_dump(mode="json")
    elif dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)
    try:
        text = json.dumps(data, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise KitaruUsageError(
            f"{what}: data must be JSON (dicts, lists, str, numbers, bool, None): {exc}"
        ) from None
    if len(text.encode()) > DATA_MAX_BYTES:
        raise KitaruUsageError(
            f"{what}: data is {len(text.encode())} bytes as JSON, more than the "
            f"{DATA_MAX_BYTES} an event holds; save large values with kitaru.save() and "
            "emit their name"
        )
    return json.loads(text)


class Feed:
    """The entries of one run, on their way to the journal."""

    def __init__(self, journal: Journal, exec_id: str, run: int, owner: str) -> None:
        self.journal = journal
        self.exec_id = exec_id
        self.run = run
        self.owner = owner
        # Entries, and the committed calls (`call_ended`), in order. A call appends
        # without the lock (a deque's append is atomic); the writer takes from the left,
        # so nothing appended while it writes is lost. A completed call is there as
        # `Ended`, a failed one as its record: records kept until the next write would
        # keep their metadata and outputs alive, and make the garbage collector run
        # every few hundred calls.
        self.pending: deque[EventRecord | CallRecord | Ended] = deque()
        # Calls running now, key: (started, name, kind); set and popped on the call's path.
        self.running: dict[str, tuple[float, str, str]] = {}
        # Calls that have a call_started entry, key: (started, name, kind).
        self._announced: dict[str, tuple[float, str, str]] = {}
        self._lock = threading.Lock()  # the entries added, the output merged, the announced
        self._writing = threading.Lock()  # one batch in flight: numbers follow adds
        self._stop = _later.Stop()
        self._thread: threading.Thread | None = None
        self._later: _later.Later | None = None  # the writer's start, once scheduled
        self._left_out = 0
        # Entries at the front of the pending list that a write which failed may have
        # stored (its answer lost): the next flush sends with `again`, and output is
        # not added to them.
        self._unsure = 0
        self.lost = False  # the lease was taken over: this run writes nothing more

    def add(self, kind: str, name: str, call_key: str | None = None, data: Any = None) -> None:
        entry = EventRecord(self.exec_id, 0, self.run, time.time(), kind, name, call_key, data)
        with self._lock:
            if call_key is not None and call_key in self.running:
                self._announce(call_key)  # its events follow its start
            self.pending.append(entry)
            full = len(self.pending) >= PENDING_MAX
            self._start()
        if full:
            self.flush()

    def call_started(self, key: str, name: str, kind: str, started: float) -> None:
        """A checkpoint call starts running. This is on every call's path, so it costs a
        dict entry: the writer announces the call only if it is still running when it
        writes (or when the call emits), so fast calls get no entry of their own. (The
        runtime sets `running` itself, inline: kitaru/_runtime.py:CheckpointRun.enter.)"""
        self.running[key] = (started, name, kind)

    def call_ended(self, call: CallRecord) -> None:
        """A checkpoint call was committed: on every call's path, so no lock and no
        copy (kitaru/_runtime.py:ExecutionContext.commit does the same inline)."""
        self.running.pop(call.key, None)
        if call.status == "completed":
            self.pending.append((call.seq, call.key, call.ended_at, call.attempts))
        else:
            self.pending.append(call)
        if len(self.pending) >= PENDING_MAX:
            self.flush()

    def _announce(self, key: str) -> None:
        # (under self._lock) The running call's call_started entry, now.
        if key not in self._announced:
            self._announced[key] = started, name, kind = self.running[key]
            self.pending.append(
                EventRecord(
                    self.exec_id, 0, self.run, started, "call_started", name, key, {"kind": kind}
                )
            )

    def output(self, call_key: str | None, stream: str, text: str) -> None:
        """Printed text, from the tee of kitaru/_logs.py: never raises, never blocks on
        the journal (it runs inside the user's print)."""
        pending = self.pending
        with self._lock:
            if len(pending) >= PENDING_MAX:
                self._left_out += len(text)
                return
            last = pending[-1] if len(pending) > self._unsure else None
            if (
                isinstance(last, EventRecord)
                and last.kind == "output"
                and last.call_key == call_key
                and last.name == stream
                and len(last.data["text"]) + len(text) <= OUTPUT_CHARS
            ):
                last.data["text"] += text
                return
            now = time.time()
            if self._left_out:
                note = f"[{self._left_out} characters of output left out of the live feed; `kitaru executions logs` has them]\n"
                pending.append(
                    EventRecord(
                        self.exec_id, 0, self.run, now, "output", "stderr", call_key, {"text": note}
                    )
                )
                self._left_out = 0
            for i in range(0, len(text), OUTPUT_CHARS):
                pending.append(
                    EventRecord(
                        self.exec_id, 0, self.run, now, "output", stream, call_key,
                        {"text": text[i : i + OUTPUT_CHARS]},
                    )
                )  # fmt: skip
            self._start()

    def _start(self) -> None:
        # (under self._lock) Daemon: it takes no branch (kitaru/_branches.py). It starts
        # when its first write is due (kitaru/_later.py): a run that ends within a flush
        # period writes its feed once, at close, with no thread to start and join.
        if self._later is None and not self._stop.is_set():
            self._later = _later.call(FLUSH_SECONDS, self._start_writer)

    def _start_writer(self) -> None:
        with self._lock:
            if not self._stop.is_set() and self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name=f"kitaru-feed-{self.exec_id}", daemon=True
                )
                self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            try:
                self.flush()
            except Exception:
                pass  # the journal is unreachable for now: the next tick tries again

    def flush(self) -> None:
        """Write what is pending, in order; raises what the journal raises (the entries
        stay pending)."""
        with self._writing:
            with self._lock:
                pending = self.pending
                batch = self._entries(self._take())
                unsure, self._unsure = self._unsure, 0
            while batch and not self.lost:
                part = batch[:BATCH_MAX]
                try:
                    stored = self.journal.append_events(
                        self.exec_id, part, owner=self.owner, again=unsure > 0
                    )
                except BaseException:
                    with self._lock:
                        pending.extendleft(reversed(batch))
                        self._unsure = len(batch)
                    raise
                self.lost = not stored
                batch = batch[BATCH_MAX:]

    def _entries(self, batch: list[EventRecord | CallRecord | Ended]) -> list[EventRecord]:
        """(under self._lock) The batch as entries. A completed call nobody was told had
        started (it ran within one write) is stored as its number only, and such numbers
        next to each other share one `calls_ended` entry (at most FOLD_MAX): a tight loop
        of small checkpoints costs the journal a row per write, and its readers get each
        call's details from the calls table (kitaru/journal/_events.py). Calls slow
        enough to watch, and calls that failed, get `call_started` and `call_ended`."""
        entries: list[EventRecord] = []
        announced = self._announced
        compact: list[int] = []  # the numbers of the open calls_ended entry (`fold`)
        fold: EventRecord | None = None
        last = 0.0  # when the last call folded ended: the entry's time
        for item in batch:
            if item.__class__ is tuple:
                seq, key, ended, attempts = item
                if key not in announced:
                    # (This runs once per call: the fast call's path is kept short.)
                    if fold is not None and len(compact) < FOLD_MAX:
                        compact.append(seq)
                        last = ended
                        continue
                    if fold is not None:
                        fold.ts = last
                    compact, last = [seq], ended
                    fold = EventRecord(
                        self.exec_id, 0, self.run, ended, "calls_ended", "calls", None,
                        {"seqs": compact},
                    )  # fmt: skip
                    entries.append(fold)
                    continue
                started, name, kind = announced.pop(key)
                status, error = "completed", None
            elif isinstance(item, CallRecord):
                key, ended, attempts, error = item.key, item.ended_at, item.attempts, item.error
                started, name, kind, status = item.started_at, item.name, item.kind, item.status
                announced.pop(key, None)
            else:
                if fold is not None:
                    fold.ts = last
                fold = None
                entries.append(item)  # type: ignore[arg-type]
                continue
            if fold is not None:
                fold.ts = last
            fold = None
            data = {
                "status": status, "kind": kind, "attempts": attempts,
                "duration_s": round(ended - started, 6),
                "error": error[:200] if error else None,
            }  # fmt: skip
            entries.append(
                EventRecord(self.exec_id, 0, self.run, ended, "call_ended", name, key, data)
            )
        if fold is not None:
            fold.ts = last
        for key, (started, name, kind) in sorted(self.running.items(), key=_started):
            if key in announced:
                continue
            announced[key] = (started, name, kind)
            at = next((i for i, e in enumerate(entries) if e.ts > started), len(entries))
            entries.insert(
                at,
                EventRecord(
                    self.exec_id, 0, self.run, started, "call_started", name, key, {"kind": kind}
                ),
            )
        return entries

    def abandon(self) -> None:
        """Stop writing without a last flush: the journal is gone (the run stops)."""
        self.lost = True
        self._stop.set()
        if self._later is not None:
            self._later.cancel()

    def end(self, status: str, error: str | None) -> list[EventRecord]:
        """The run's last entry, and the entries not written yet: the caller stores them
        with the run's status (`Journal.finish(events=...)`), so an empty run ends in one
        commit. Entries a failed write may have stored, or more than one append takes,
        are written here first, as the writer would have."""
        self.add(
            "run_ended", status, None, {"status": status, "error": (error or "")[:2000] or None}
        )
        self._stop.set()
        with self._lock:  # (no writer starts once the stop is set)
            writer = self._thread
            if self._later is not None:
                self._later.cancel()
        if writer is not None:
            writer.join()
        if self._unsure or len(self.pending) > BATCH_MAX:
            try:
                self.flush()
            except Exception:
                pass  # (the run's end goes to its status; the entries stay pending)
            return []
        with self._writing, self._lock:
            entries = self._entries(self._take())
        return [] if self.lost else entries

    def _take(self) -> list[EventRecord | CallRecord | Ended]:
        # (under self._lock) The entries there are now, taken from the left in C (no
        # comparison of entries: a dataclass's __eq__ per entry costs every call); calls
        # that end while this runs land after them and wait for the next write.
        pending = self.pending
        return list(map(operator.call, itertools.repeat(pending.popleft, len(pending))))


def write_entries(journal: Journal, exec_id: str, owner: str, entries: list[EventRecord]) -> None:
    """A run's last entries (`Feed.end`) on their own, when no status change takes them
    (a run that is retried, or goes back to its queue); a journal that fails here leaves
    the run's end to its status."""
    try:
        for at in range(0, len(entries), BATCH_MAX):
            journal.append_events(exec_id, entries[at : at + BATCH_MAX], owner=owner)
    except Exception:
        pass


# A completed call on its way to the feed: (seq, key, ended_at, attempts).
Ended = tuple[int, str, float, int]


def _started(item: tuple[str, tuple[float, str, str]]) -> float:
    return item[1][0]
