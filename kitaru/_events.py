"""The live feed of an execution: `kitaru.emit`, and what `watch` and the SSE stream show.

While a run goes, its feed gets an entry (`EventRecord`) for each of these, in order:
`run_started`; `call_started` when a checkpoint call starts running (a call read back
from the journal does not run, and gets none); `output` as the run prints and logs
(coalesced, the same text `kitaru executions logs` shows per call); `event` for each
`kitaru.emit(name, data)`; `call_ended` once the call is committed; `wait` when the flow
reaches a wait with no answer; `run_ended` with the run's status, before the execution's
status changes. The journal numbers the entries (kitaru/journal/_events.py).

Entries are written by one daemon thread per run, every FLUSH_SECONDS, in batches, so a
checkpoint call pays a list append for them, not a journal write. Calls that start and
end between two writes are compacted: their ends, next to each other, become one
`calls_ended` entry that lists them (`_fold`). Two points are written
at once instead: a checkpoint call that emitted events writes them before the call is
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
import json
import threading
import time
from typing import TYPE_CHECKING, Any

from kitaru._errors import KitaruUsageError
from kitaru.journal._events import BATCH_MAX, DATA_MAX_BYTES, NAME_MAX
from kitaru.journal._records import EventRecord

if TYPE_CHECKING:
    from kitaru.journal import Journal

FLUSH_SECONDS = 0.1
# Entries a run holds before `emit` writes them itself; output past this is not kept
# for the feed (it is still in the call's logs) and an entry says how much was left out.
PENDING_MAX = 5000
# Characters of output per entry: escaped as JSON, within DATA_MAX_BYTES.
OUTPUT_CHARS = 2000
# Fast calls listed in one `calls_ended` entry (each about 150 bytes of JSON; a longer
# error makes the entry larger, so errors are cut in call_ended entries).
FOLD_MAX = 50


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
        self._pending: list[EventRecord] = []
        self._lock = threading.Lock()  # the pending list
        self._writing = threading.Lock()  # one batch in flight: numbers follow adds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._left_out = 0
        self.lost = False  # the lease was taken over: this run writes nothing more

    def add(self, kind: str, name: str, call_key: str | None = None, data: Any = None) -> None:
        entry = EventRecord(self.exec_id, 0, self.run, time.time(), kind, name, call_key, data)
        with self._lock:
            self._pending.append(entry)
            full = len(self._pending) >= PENDING_MAX
            self._start()
        if full:
            self.flush()

    def output(self, call_key: str | None, stream: str, text: str) -> None:
        """Printed text, from the tee of kitaru/_logs.py: never raises, never blocks on
        the journal (it runs inside the user's print)."""
        with self._lock:
            if len(self._pending) >= PENDING_MAX:
                self._left_out += len(text)
                return
            last = self._pending[-1] if self._pending else None
            if (
                last is not None
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
                self._pending.append(
                    EventRecord(
                        self.exec_id, 0, self.run, now, "output", "stderr", call_key, {"text": note}
                    )
                )
                self._left_out = 0
            for i in range(0, len(text), OUTPUT_CHARS):
                self._pending.append(
                    EventRecord(
                        self.exec_id, 0, self.run, now, "output", stream, call_key,
                        {"text": text[i : i + OUTPUT_CHARS]},
                    )
                )  # fmt: skip
            self._start()

    def _start(self) -> None:
        # (under self._lock) Daemon: it takes no branch (kitaru/_branches.py).
        if self._thread is None and not self._stop.is_set():
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
                batch, self._pending = self._pending, []
            batch = _fold(batch)
            while batch and not self.lost:
                part = batch[:BATCH_MAX]
                try:
                    stored = self.journal.append_events(self.exec_id, part, owner=self.owner)
                except BaseException:
                    with self._lock:
                        self._pending[:0] = batch
                    raise
                self.lost = not stored
                batch = batch[BATCH_MAX:]

    def close(self, status: str, error: str | None) -> None:
        """The run's last entry; everything pending is written before this returns
        (a journal that fails here leaves the run's end to its status)."""
        self.add(
            "run_ended", status, None, {"status": status, "error": (error or "")[:2000] or None}
        )
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        except Exception:
            pass


def _fold(batch: list[EventRecord]) -> list[EventRecord]:
    """Fast calls, compacted: a call that started and ended within one write keeps only
    its end (with `started_at`), and a run of such ends next to each other becomes one
    `calls_ended` entry listing them (at most FOLD_MAX each). A tight loop of small
    checkpoints then costs the journal a row per write, not two per call; calls slow
    enough to watch keep their `call_started` and `call_ended` entries."""
    ended = {e.call_key for e in batch if e.kind == "call_ended"}
    if not ended:
        return batch
    folded: list[EventRecord] = []
    started: dict[str | None, float] = {}
    for e in batch:
        if e.kind == "call_started" and e.call_key in ended:
            started[e.call_key] = e.ts
            continue
        if e.kind == "call_ended" and e.call_key in started:
            call = {"key": e.call_key, "name": e.name, "started_at": started.pop(e.call_key)}
            last = folded[-1] if folded else None
            if (
                last is not None
                and last.kind == "calls_ended"
                and last.run == e.run
                and len(last.data["calls"]) < FOLD_MAX
            ):
                last.data["calls"].append({**call, **e.data})
                last.ts = e.ts
                continue
            folded.append(
                EventRecord(
                    e.exec_id, 0, e.run, e.ts, "calls_ended", "calls", None,
                    {"calls": [{**call, **e.data}]},
                )
            )  # fmt: skip
            continue
        folded.append(e)
    return folded
