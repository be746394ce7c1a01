"""One checkpoint call inside a running execution (`CheckpointRun`), sync or async, and
the frame that marks code as running inside it (`current_frame`).

In order: the call takes its key, row number and position from the execution
(kitaru/_runtime.py:ExecutionContext.next_call); `reused` returns the journal's output
when the key is completed there (after checking it is the same call), else checks the
execution may go on (no other call recorded here, not cancelled, the lease held);
`enter` opens the call's log buffer and frame and tells the live feed it runs; the
body runs (with retries, in kitaru/_checkpoint.py); `succeeded` or `failed` writes the
output's bytes and commits the call; `exit` closes the frame. This is every call's path:
it is kept short, and the feed's side of it is a dict entry and a deque append.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kitaru import _serialize
from kitaru._artifact_io import build_artifact
from kitaru._branches import current_branch
from kitaru._errors import NonDeterminismError, SerializationError
from kitaru._fingerprint import differences
from kitaru._logs import LogBuffer, current_buffer
from kitaru.journal import ArtifactRecord, CallRecord
from kitaru.journal._records import call_output_id

if TYPE_CHECKING:
    from kitaru._runtime import ExecutionContext


@dataclass(slots=True)
class CallFrame:
    """The checkpoint call running in this context."""

    key: str
    metadata: dict[str, Any] = field(default_factory=dict)
    emitted: bool = False  # kitaru.emit() was called: write the feed before the commit


current_frame: contextvars.ContextVar[CallFrame | None] = contextvars.ContextVar(
    "kitaru_call_frame", default=None
)


class CheckpointRun:
    """One call of a checkpoint inside an execution (shared by sync and async bodies)."""

    __slots__ = (
        "branch", "buf", "ctx", "explicit", "fingerprint", "frame", "func", "key", "name",
        "pos", "seq", "span", "spec", "started", "tokens",
    )  # fmt: skip

    def __init__(
        self,
        ctx: ExecutionContext,
        spec: Any,
        explicit_id: str | None,
        fingerprint: str | None = None,
    ) -> None:
        self.ctx = ctx
        self.spec = spec
        self.name: str = spec.name
        self.func: str = spec.func_ref
        self.explicit = explicit_id is not None
        self.fingerprint = fingerprint
        branch = current_branch.get()  # ctx.branch_here(), written out: this is hot
        if branch is None or branch.owner is not ctx:
            branch = ctx.root
        self.branch = branch
        self.key, self.seq, self.pos = ctx.next_call(self.name, explicit_id, self.branch)
        self.started = 0.0
        self.buf: LogBuffer | None = None
        self.frame: CallFrame | None = None
        self.tokens: tuple[Any, Any] | None = None
        self.span: tuple[Any, Any] | None = None  # (span, its context token) when traced

    def reused(self) -> tuple[bool, Any]:
        ctx = self.ctx
        done = ctx.completed.get(self.key)
        if done is None:
            # check_free, check_cancel and check_lease, called only when they may raise:
            # this is every new call's path.
            if ctx.key_at and not self.explicit:
                self.check_free()
            if ctx.cancel.is_set():
                ctx.check_cancel()
            heartbeat = ctx.heartbeat
            if heartbeat is not None and time.monotonic() >= heartbeat.lapses_at:
                ctx.check_lease()
            return False, None
        self.check_reuse(done)
        if self.ctx.trace is not None:
            self.ctx.trace.call_reused(self, done)
        return True, self.ctx.load_output(
            done, self.spec.return_hint(), allow_pickle=self.spec.allow_pickle
        )

    # -- the same call as the journal's ----------------------------------------------
    def _not_same(self, expected: str) -> str:
        ctx, branch, pos, key, func = self.ctx, self.branch.path, self.pos, self.key, self.func
        where = f"branch {branch}" if branch else "the flow body"
        done = ctx.completed.get(expected)
        return (
            f"execution {ctx.exec_id} is not replaying the same way: at position {pos} of "
            f"{where} the journal has checkpoint {expected!r} ({done.func if done else '?'}) "
            f"but the flow called {key!r} ({func}); restore the code the execution started "
            "with, or replay it to run the new code from a checkpoint"
        )

    def check_reuse(self, done: CallRecord) -> None:
        """Raise unless the completed call `done` is the call being made."""
        call, ctx = self, self.ctx
        if call.explicit:
            if done.func != call.func:
                raise NonDeterminismError(
                    f"execution {ctx.exec_id} is not replaying the same way: checkpoint id "
                    f"{call.key!r} belongs to {done.func} in the journal but {call.func} "
                    "used it now; restore the code the execution started with, or replay it"
                )
        elif (done.pos or done.seq) != call.pos or done.func != call.func:
            expected = ctx.key_at.get((call.branch.path, call.pos), "(nothing)")
            raise NonDeterminismError(self._not_same(expected))
        if (
            call.fingerprint is not None
            and done.fingerprint is not None
            and done.fingerprint != call.fingerprint
            # Outputs a replay took from its source or an override: the user chose them.
            and done.reused_from is None
            and not done.metadata.get("override")
        ):
            # Ids and map() are for the user's own checkpoints; an adapter keys its calls.
            own_ids = (
                "give calls whose order is not fixed their own ids "
                f"({call.name}.with_id(...)) or use {call.name}.map(...); "
                if call.spec.kind == "checkpoint"
                else ""
            )
            raise NonDeterminismError(
                f"checkpoint call {call.key!r} of execution {ctx.exec_id} was made with other "
                f"inputs than the journal recorded for it "
                f"({differences(done.fingerprint, call.fingerprint)}), so its stored output "
                "is not this call's. Restore the code and inputs the execution started with; "
                f"{own_ids}or replay the execution to run the new code"
            )

    def check_free(self) -> None:
        """Raise if the journal has another completed call where this new one is."""
        if self.explicit or not self.ctx.key_at:
            return
        expected = self.ctx.key_at.get((self.branch.path, self.pos))
        if expected is not None and expected != self.key:
            raise NonDeterminismError(self._not_same(expected))

    # -- running the call --------------------------------------------------------------
    def enter(self, *, detached: bool = False) -> None:
        """Start running the call. `detached`: the body runs in pieces between the
        caller's own code (a streamed llm call), so this context is not marked as inside
        the call."""
        ctx, key = self.ctx, self.key
        self.started = started = time.time()
        feed = ctx.feed
        self.buf = buf = LogBuffer(ctx.exec_id, key, ctx.run, ctx.live_output)
        self.frame = frame = CallFrame(key)
        feed.running[key] = (started, self.name, self.spec.kind)  # Feed.call_started, inline
        if not detached:
            self.tokens = (current_buffer.set(buf), current_frame.set(frame))
        if ctx.trace is not None:
            self.span = ctx.trace.call_started(self)

    def exit(self) -> None:
        if self.span is not None:
            assert self.ctx.trace is not None
            self.ctx.trace.call_exit(*self.span)
            self.span = None
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
            branch=self.branch.path,
            pos=self.pos,
            fingerprint=self.fingerprint,
        )

    def succeeded(self, value: Any, attempts: int) -> None:
        assert self.buf is not None
        ctx, key, spec = self.ctx, self.key, self.spec
        try:
            # ctx.artifact(), written out: this is every call's path.
            encoded = _serialize.encode(
                value, what=f"checkpoint {key!r}", hint=spec.return_hint(),
                allow_pickle=spec.allow_pickle,
            )  # fmt: skip
            output = build_artifact(
                exec_id=ctx.exec_id, store=ctx.store, name=key, producer=spec.kind,
                producer_key=key, encoded=encoded,
                artifact_id=call_output_id(ctx.exec_id, self.seq),
            )  # fmt: skip
        except SerializationError as exc:
            self._traced(attempts, None, exc)
            self._commit(self._record("failed", attempts, None, str(exc)), None)
            raise
        if self.span is not None:
            self._traced(attempts, output, None)
        frame = self.frame
        assert frame is not None
        self.ctx.commit(
            self._record("completed", attempts, output), output, self.buf, emitted=frame.emitted
        )

    def _traced(
        self, attempts: int, output: ArtifactRecord | None, error: BaseException | None
    ) -> None:
        if self.span is not None:
            assert self.ctx.trace is not None
            self.ctx.trace.call_ended(self, self.span[0], attempts, output, error)

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
        self._traced(attempts, None, exc)
        self._commit(self._record("failed", attempts, None, error, tb), None)

    def _commit(self, record: CallRecord, output: ArtifactRecord | None) -> None:
        assert self.buf is not None and self.frame is not None
        self.ctx.commit(record, output, self.buf, emitted=self.frame.emitted)
