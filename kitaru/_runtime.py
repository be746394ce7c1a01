"""The state of one execution while it runs in this process, and the checkpoint protocol.

A checkpoint call, in order: take the next key (`name`, `name#2`, ... or an explicit
id) and position; if the journal has the key completed, check it is the same call
at the same position and return the stored output; otherwise run the body, write
the output's bytes, then commit the call to the journal in one transaction.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kitaru import _serialize
from kitaru._artifact_io import build_artifact, load_value
from kitaru._errors import (
    ExecutionCancelled,
    KitaruUsageError,
    LeaseError,
    NonDeterminismError,
    SerializationError,
)
from kitaru._logs import LogBuffer, current_buffer
from kitaru.artifacts import open_store
from kitaru.journal import ArtifactRecord, CallRecord, ExecutionRecord, Journal, WaitRecord
from kitaru.journal._records import call_output_id


@dataclass(slots=True)
class CallFrame:
    """The checkpoint call running in this context."""

    key: str
    metadata: dict[str, Any] = field(default_factory=dict)


current_frame: contextvars.ContextVar[CallFrame | None] = contextvars.ContextVar(
    "kitaru_call_frame", default=None
)
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


def activate(ctx: ExecutionContext) -> Callable[[], None]:
    token = _current.set(ctx)
    buf_token = current_buffer.set(ctx.flow_buffer)
    with _active_lock:
        _active.append(ctx)

    def deactivate() -> None:
        with _active_lock:
            _active.remove(ctx)
        current_buffer.reset(buf_token)
        _current.reset(token)

    return deactivate


def request_cancel_all() -> None:
    """Signal handler target: every execution in this process stops at its next boundary."""
    for ctx in list(_active):
        ctx.cancel.set()


class ExecutionContext:
    def __init__(
        self,
        journal: Journal,
        record: ExecutionRecord,
        owner: str,
        calls: list[CallRecord] | None = None,
    ) -> None:
        self.journal = journal
        self.record = record
        self.exec_id = record.exec_id
        self.owner = owner
        self.run = record.runs
        self.store_uri = record.artifact_store or ""
        self.store = open_store(self.store_uri)
        self.completed: dict[str, CallRecord] = {}
        self.key_at: dict[int, str] = {}
        for call in journal.calls(self.exec_id) if calls is None else calls:
            if call.status == "completed":
                self.completed[call.key] = call
                self.key_at[call.seq] = call.key
        self.waits: dict[str, WaitRecord] = {w.key: w for w in journal.waits(self.exec_id)}
        self.wait_sites: dict[str, str] = {}
        self.explicit_ids: set[str] = set()
        self.occurrences: dict[str, int] = {}
        self.wait_occurrences: dict[str, int] = {}
        self.seq = 0
        self.cancel = threading.Event()
        if record.cancel_requested:
            self.cancel.set()
        self.flow_buffer = LogBuffer(self.exec_id, None, self.run)
        self._lock = threading.Lock()

    # -- positions -----------------------------------------------------------------------
    def next_call(self, name: str, explicit_id: str | None) -> tuple[str, int]:
        with self._lock:
            if explicit_id is not None:
                if explicit_id in self.explicit_ids:
                    raise KitaruUsageError(
                        f"checkpoint id {explicit_id!r} is used twice in execution "
                        f"{self.exec_id}; ids must be unique within an execution"
                    )
                self.explicit_ids.add(explicit_id)
                key = explicit_id
            else:
                n = self.occurrences.get(name, 0) + 1
                self.occurrences[name] = n
                key = name if n == 1 else f"{name}#{n}"
            self.seq += 1
            return key, self.seq

    def next_wait(self, name: str) -> tuple[str, int]:
        with self._lock:
            n = self.wait_occurrences.get(name, 0) + 1
            self.wait_occurrences[name] = n
            self.seq += 1
            return (name if n == 1 else f"{name}#{n}"), self.seq

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise ExecutionCancelled(self.exec_id)

    def check_reuse(self, done: CallRecord, seq: int, func: str) -> None:
        if done.seq != seq or done.func != func:
            raise NonDeterminismError(
                f"execution {self.exec_id} is not replaying the same way: at position {seq} "
                f"the journal has checkpoint {self.key_at.get(seq, '(nothing)')!r} "
                f"({_func_of(self, seq)}) but the flow called {done.key!r} ({func}) here; "
                "restore the code the execution started with, or replay it to run the new "
                "code from a checkpoint"
            )

    def check_free(self, seq: int, key: str, func: str) -> None:
        expected = self.key_at.get(seq)
        if expected is not None and expected != key:
            raise NonDeterminismError(
                f"execution {self.exec_id} is not replaying the same way: at position {seq} "
                f"the journal has checkpoint {expected!r} ({_func_of(self, seq)}) but the flow "
                f"called {key!r} ({func}); restore the code the execution started with, or "
                "replay it to run the new code from a checkpoint"
            )

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
    ) -> None:
        if not self.journal.commit_call(call, output, buf.take(), owner=self.owner):
            raise LeaseError(
                f"execution {self.exec_id} was taken over by another process while this one "
                f"ran checkpoint {call.key!r}; this process stops here"
            )
        if call.status == "completed":
            self.completed[call.key] = call
            self.key_at[call.seq] = call.key


def _func_of(ctx: ExecutionContext, seq: int) -> str:
    key = ctx.key_at.get(seq)
    call = ctx.completed.get(key) if key else None
    return call.func if call else "?"


class CheckpointRun:
    """One call of a checkpoint inside an execution (shared by sync and async bodies)."""

    __slots__ = ("buf", "ctx", "frame", "func", "key", "name", "seq", "spec", "started", "tokens")

    def __init__(self, ctx: ExecutionContext, spec: Any, explicit_id: str | None) -> None:
        self.ctx = ctx
        self.spec = spec
        self.name: str = spec.name
        self.func: str = spec.func_ref
        self.key, self.seq = ctx.next_call(self.name, explicit_id)
        self.started = 0.0
        self.buf: LogBuffer | None = None
        self.frame: CallFrame | None = None
        self.tokens: tuple[Any, Any] | None = None

    def reused(self) -> tuple[bool, Any]:
        done = self.ctx.completed.get(self.key)
        if done is None:
            self.ctx.check_free(self.seq, self.key, self.func)
            self.ctx.check_cancel()
            return False, None
        self.ctx.check_reuse(done, self.seq, self.func)
        return True, self.ctx.load_output(
            done, self.spec.return_hint(), allow_pickle=self.spec.allow_pickle
        )

    def enter(self) -> None:
        self.started = time.time()
        self.buf = LogBuffer(self.ctx.exec_id, self.key, self.ctx.run)
        self.frame = CallFrame(self.key)
        self.tokens = (current_buffer.set(self.buf), current_frame.set(self.frame))

    def exit(self) -> None:
        if self.tokens is not None:
            current_frame.reset(self.tokens[1])
            current_buffer.reset(self.tokens[0])
            self.tokens = None

    def _record(
        self,
        status: str,
        attempts: int,
        output: ArtifactRecord | None,
        error: str | None = None,
        tb: str | None = None,
    ) -> CallRecord:
        assert self.frame is not None
        return CallRecord(
            exec_id=self.ctx.exec_id,
            key=self.key,
            seq=self.seq,
            name=self.name,
            func=self.func,
            status=status,
            started_at=self.started,
            ended_at=time.time(),
            run=self.ctx.run,
            kind=self.spec.kind,
            attempts=attempts,
            output_artifact=output.artifact_id if output else None,
            error=error,
            traceback=tb,
            metadata=self.frame.metadata,
            output=output,
        )

    def succeeded(self, value: Any, attempts: int) -> None:
        assert self.buf is not None
        try:
            output = self.ctx.artifact(
                value,
                name=self.key,
                producer=self.spec.kind,
                producer_key=self.key,
                what=f"checkpoint {self.key!r}",
                hint=self.spec.return_hint(),
                allow_pickle=self.spec.allow_pickle,
                artifact_id=call_output_id(self.ctx.exec_id, self.seq),
            )
        except SerializationError as exc:
            self.ctx.commit(self._record("failed", attempts, None, str(exc)), None, self.buf)
            raise
        self.ctx.commit(self._record("completed", attempts, output), output, self.buf)

    def failed(self, exc: BaseException, attempts: int) -> None:
        assert self.buf is not None
        if not hasattr(exc, "kitaru_checkpoint"):
            try:
                exc.kitaru_checkpoint = self.key  # type: ignore[attr-defined]
            except AttributeError:
                pass
        import traceback

        error = f"{type(exc).__name__}: {exc}"
        tb = "".join(traceback.format_exception(exc))
        self.ctx.commit(self._record("failed", attempts, None, error, tb), None, self.buf)
