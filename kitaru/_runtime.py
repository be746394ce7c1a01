"""The state of one execution while it runs in this process, and the checkpoint protocol.

A checkpoint call, in order: find the branch it is made in (the flow body, or a task or
thread the flow started: `_branches`); take the branch's next position and key (`name`,
`name#2`, ... prefixed by the branch, or an explicit id) and a row number (`seq`, unique
in the execution); if the journal has the key completed, check it is the same function,
at the same position of the same branch (explicit ids: by id alone), with the same input
fingerprint, and return the stored output; otherwise run the body, write the output's
bytes, then commit the call to the journal in one transaction. This module keeps the
execution's side (keys, row numbers, the lease, the commit); the call's own side
(`CheckpointRun`: reuse checks, entering, the output, exiting) is in
kitaru/_checkpoint_call.py.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kitaru import _branches, _serialize
from kitaru._artifact_io import build_artifact, load_value
from kitaru._branches import Branch, current_branch
from kitaru._checkpoint_call import CallFrame, CheckpointRun, current_frame
from kitaru._errors import (
    ExecutionCancelled,
    ExecutionLost,
    ExecutionReleased,
    ExecutionTakenOver,
    JournalUnavailableError,
    KitaruUsageError,
    LeaseError,
)
from kitaru._events import PENDING_MAX, Feed
from kitaru._logs import LogBuffer, current_buffer
from kitaru.artifacts import open_store
from kitaru.journal import ArtifactRecord, CallRecord, ExecutionRecord, Journal, WaitRecord

if TYPE_CHECKING:
    from kitaru._lease import Heartbeat
    from kitaru._otel import RunTrace


# One checkpoint call's side of the protocol is in kitaru/_checkpoint_call.py; its names
# are reached through this module too.
__all__ = [
    "CallFrame",
    "CheckpointRun",
    "ExecutionContext",
    "activate",
    "current",
    "current_frame",
    "next_child",
    "request_cancel_all",
    "request_release_all",
]

_current: contextvars.ContextVar[ExecutionContext | None] = contextvars.ContextVar(
    "kitaru_execution", default=None
)
_active: list[ExecutionContext] = []
_active_lock = threading.Lock()


def current() -> ExecutionContext | None:
    """The execution running in this context; from a thread the user started inside a
    flow (where context variables are empty), the only execution running in the process."""
    ctx = _current.get()
    if ctx is None and len(_active) == 1:
        return _active[0]
    return ctx


def next_child() -> Branch | None:
    """The branch of a task or thread started here: the next child of the branch running
    here, when here is a flow body (not outside a flow, not inside a checkpoint call)."""
    parent = current_branch.get()
    if parent is None or current_frame.get() is not None or _branches.flat.get():
        return None
    ctx = _current.get()
    if ctx is None or parent.owner is not ctx or ctx.legacy:
        return None
    with ctx._lock:
        return parent.child()


def activate(ctx: ExecutionContext) -> Callable[[], None]:
    _branches.install(next_child)
    token = _current.set(ctx)
    branch_token = current_branch.set(ctx.root)
    buf_token = current_buffer.set(ctx.flow_buffer)
    with _active_lock:
        _active.append(ctx)

    def deactivate() -> None:
        ctx.join_submitted()
        ctx.closed = True
        with _active_lock:
            _active.remove(ctx)
        current_buffer.reset(buf_token)
        current_branch.reset(branch_token)
        _current.reset(token)

    return deactivate


def request_cancel_all() -> None:
    """Signal handler target: every execution in this process stops at its next boundary."""
    for ctx in list(_active):
        ctx.cancel.set()


def request_release_all() -> None:
    """Signal handler target of a stopping worker: every execution in this process stops
    at its next boundary and goes back to its queue."""
    for ctx in list(_active):
        ctx.releasing = True
        ctx.cancel.set()


class ExecutionContext:
    def __init__(
        self,
        journal: Journal,
        record: ExecutionRecord,
        owner: str,
        calls: list[CallRecord] | None = None,
        waits: list[WaitRecord] | None = None,
    ) -> None:
        self.journal = journal
        self.record = record
        self.exec_id = record.exec_id
        self.owner = owner
        self.run = record.runs
        self.store_uri = record.artifact_store or ""
        self.store = open_store(self.store_uri)
        self.root = Branch("", self)
        self.completed: dict[str, CallRecord] = {}
        # (branch, position) -> key of the completed call the journal has there.
        self.key_at: dict[tuple[str, int], str] = {}
        # Row numbers the journal already uses: by key (calls and waits apart: a wait and
        # a checkpoint may share a name), and all of them.
        self.call_seq: dict[str, int] = {}
        self.wait_seq: dict[str, int] = {}
        self.used_seq: set[int] = set()
        # An execution recorded before branches existed keeps its keys: every call in the
        # flow body's numbering, as the release that started it made them.
        self.legacy = False
        after = 0  # new rows are numbered after every row of an earlier run
        for call in journal.calls(self.exec_id) if calls is None else calls:
            self.legacy = self.legacy or call.pos is None
            self.call_seq.setdefault(call.key, call.seq)
            self.used_seq.add(call.seq)
            if not call.metadata.get("override"):
                # (An override stands at its source call's number, wherever that is.)
                after = max(after, call.seq)
            if call.status == "completed":
                self.completed[call.key] = call
                if call.pos != 0:  # 0: an explicit id, found by id alone
                    self.key_at[(call.branch, call.pos or call.seq)] = call.key
        known = journal.waits(self.exec_id) if waits is None else waits
        self.waits: dict[str, WaitRecord] = {w.key: w for w in known}
        for w in self.waits.values():
            self.wait_seq.setdefault(w.key, w.seq)
            self.used_seq.add(w.seq)
            after = max(after, w.seq)
        self.next_seq = after + 1
        self.closed = False
        self.wait_sites: dict[str, str] = {}
        self.explicit_ids: set[str] = set()
        self.id_uses: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self.started = 0  # calls and waits reached in this run (legacy numbering only)
        self.cancel = threading.Event()
        self.releasing = False  # the cancel event means "back to the queue" (a worker stops)
        if record.cancel_requested:
            self.cancel.set()
        self.feed = Feed(journal, self.exec_id, self.run, owner)
        self.live_output = self.feed.output  # (one bound method for every call's logs)
        self.flow_buffer = LogBuffer(self.exec_id, None, self.run, self.live_output)
        self._lock = threading.Lock()
        self._submitted: list[threading.Thread] = []
        # This run's span when tracing is on (kitaru/_tracing.py); the only thing a
        # checkpoint call checks when it is off.
        self.trace: RunTrace | None = None
        self.heartbeat: Heartbeat | None = None  # set by the run that drives this context

    def track(self, thread: threading.Thread) -> None:
        """A thread `submit` started: the run waits for it before it ends."""
        with self._lock:
            self._submitted = [t for t in self._submitted if t.is_alive()]
            self._submitted.append(thread)

    def join_submitted(self) -> None:
        """Wait for the calls `submit` started that are still running."""
        while True:
            with self._lock:
                running = [t for t in self._submitted if t.is_alive()]
                self._submitted = []
            if not running:
                return
            for thread in running:
                thread.join()

    def check_open(self) -> None:
        """Raise in a thread or task that outlived its run (a flow retry runs again in the
        same process): it makes no more calls and commits nothing."""
        if self.closed:
            raise LeaseError(
                f"this run of execution {self.exec_id} has ended; a thread or task it "
                "started makes no more checkpoint calls"
            )

    # -- positions -----------------------------------------------------------------------
    def branch_here(self) -> Branch:
        """The branch of the code running here; the flow body for a thread the flow
        started in a way `_branches` cannot see."""
        branch = current_branch.get()
        # (A legacy execution never gets branches: `next_child` gives it none.)
        if branch is None or branch.owner is not self:
            return self.root
        return branch

    def _seq(self, key: str, rows: dict[str, int]) -> int:
        """The row number of `key` in `rows` (the calls' or the waits'), under the lock.

        A key the journal has keeps its row. A new key takes the next number after every
        row of earlier runs and every number given in this run, so numbers follow the
        order calls started, across runs: a replay `--from` a call reuses exactly the
        calls that started before it. A flow without branches numbers its rows 1, 2, 3
        on every run, as it always did. (Numbers given in this run only grow and keys are
        taken once per run: neither needs a record.)"""
        if self.legacy:
            self.started += 1
            return self.started  # the numbering of the release that recorded it
        seq = rows.get(key)
        if seq is None:
            seq = self.next_seq
            while seq in self.used_seq:  # an override's row, at its source's number
                seq += 1
            self.next_seq = seq + 1
        return seq

    def next_call(self, name: str, explicit_id: str | None, branch: Branch) -> tuple[str, int, int]:
        """(key, row number, position in the branch) of the next call of `name`."""
        with self._lock:
            if self.closed:
                self.check_open()
            if explicit_id is not None:
                if explicit_id in self.explicit_ids:
                    raise KitaruUsageError(
                        f"checkpoint id {explicit_id!r} is used twice in execution "
                        f"{self.exec_id}; ids must be unique within an execution"
                    )
                self.explicit_ids.add(explicit_id)
                if not self.legacy:
                    # Found by id alone: it takes no position (it may be made or not,
                    # here or there, depending on a race).
                    return explicit_id, self._seq(explicit_id, self.call_seq), 0
                key = explicit_id
            else:
                n = branch.occurrences.get(name, 0) + 1
                branch.occurrences[name] = n
                key = name if n == 1 else f"{name}#{n}"
                if branch.path:
                    key = f"{branch.path}/{key}"
            branch.pos += 1
            return key, self._seq(key, self.call_seq), branch.pos

    def next_version(self, name: str) -> int:
        """The version the next artifact saved as `name` gets (parallel saves of one name
        get one version each)."""
        with self._lock:
            version = self._versions.get(name)
            if version is None:
                latest = self.journal.find_artifact(self.exec_id, name)
                version = latest.version if latest else 0
            self._versions[name] = version + 1
            return version + 1

    def unique_id(self, base: str) -> str:
        """`base`, or `base#2`, `base#3`, ... when this run already used it as an id."""
        with self._lock:
            n = self.id_uses.get(base, 0) + 1
            self.id_uses[base] = n
        return base if n == 1 else f"{base}#{n}"

    def next_wait(self, name: str) -> tuple[str, int]:
        branch = self.branch_here()
        with self._lock:
            n = branch.wait_occurrences.get(name, 0) + 1
            branch.wait_occurrences[name] = n
            key = branch.key(name, n)
            branch.pos += 1
            return key, self._seq(key, self.wait_seq)

    def check_lease(self) -> None:
        """Before a body runs: a lease unrenewed for too long is renewed first, or the
        run stops (kitaru/_lease.py:Heartbeat)."""
        heartbeat = self.heartbeat
        if heartbeat is None or time.monotonic() < heartbeat.lapses_at:
            return  # (Heartbeat.lapsing(), inline: this is every call's path)
        try:
            held = heartbeat.renew_now()
        except JournalUnavailableError as exc:
            raise ExecutionLost(
                self.exec_id, f"{exc}, so its lease lapsed and this process stopped"
            ) from None
        if not held:
            raise ExecutionTakenOver(
                self.exec_id,
                "another process took it over while this one could not renew "
                "its lease, so this process ran no further checkpoint",
            )

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            if self.releasing:
                raise ExecutionReleased(self.exec_id)
            raise ExecutionCancelled(self.exec_id)

    # -- outputs -------------------------------------------------------------------------
    def load_output(self, done: CallRecord, hint: Any, *, allow_pickle: bool = False) -> Any:
        """A completed call's output; a pickled one only for a checkpoint that allows
        pickle, and only its own kind of output (never an override)."""
        if done.output is None:
            return None
        return load_value(done.output, self.store_uri, hint=hint, allow_pickle=allow_pickle)

    def artifact(
        self,
        value: Any,
        *,
        name: str,
        producer: str,
        producer_key: str | None,
        what: str,
        hint: Any = None,
        allow_pickle: bool = False,
        version: int = 1,
        metadata: dict[str, Any] | None = None,
        artifact_id: str | None = None,
    ) -> ArtifactRecord:
        encoded = _serialize.encode(value, what=what, hint=hint, allow_pickle=allow_pickle)
        return build_artifact(
            exec_id=self.exec_id,
            store=self.store,
            name=name,
            producer=producer,
            producer_key=producer_key,
            encoded=encoded,
            version=version,
            metadata=metadata,
            artifact_id=artifact_id,
        )

    def commit(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        buf: LogBuffer,
        *,
        emitted: bool = False,
    ) -> None:
        if self.closed:
            self.check_open()
        if emitted:
            # The call's events are stored before the call counts as done: a resume reads
            # the call back and does not run it, so they are never emitted again.
            self.feed.flush()
        try:
            held = self.journal.commit_call(call, output, buf.take(), owner=self.owner)
        except JournalUnavailableError as exc:
            raise ExecutionLost(
                self.exec_id, f"{exc} while committing checkpoint {call.key!r}"
            ) from None
        if not held:
            raise ExecutionTakenOver(
                self.exec_id,
                f"another process took it over while this one ran checkpoint "
                f"{call.key!r}, whose output was not recorded",
            )
        # The feed's call_ended, inline: this is every call's path.
        feed = self.feed
        feed.running.pop(call.key, None)
        if call.status == "completed":
            feed.pending.append((call.seq, call.key, call.ended_at, call.attempts))
        else:
            feed.pending.append(call)
        if len(feed.pending) >= PENDING_MAX:
            feed.flush()
        # (`completed` and `key_at` hold what earlier runs committed: a key and a position
        # are taken once per run, so this run's own commits are never looked up again.)
