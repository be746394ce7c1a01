"""Checkpoint calls that have no decorated function behind them.

`kitaru.llm()` and the agent-harness adapters turn a model request or a tool call
into a checkpoint call. They reuse the checkpoint protocol of `_runtime.CheckpointRun`
(keys, positions, the determinism guard, store-then-journal commits); this module only
supplies a spec in place of a `Checkpoint` object and runs a body once, sync or async.

Values that the harness hands back are often not JSON (a model response object):
`dump` turns the fresh value into what is stored, and `load` turns a stored value
back into what the caller expects. The first run returns the fresh value itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from kitaru import _branches, _runtime

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CallSpec:
    """What `CheckpointRun` needs to know about the code behind a call.

    `func_ref` is what the determinism guard compares on resume: keep it stable for
    the same kind of call (`kitaru:llm`, `pydantic_ai:model_request`, ...).
    """

    name: str
    func_ref: str
    kind: str
    hint: Any = None
    allow_pickle: bool = False

    def return_hint(self) -> Any:
        return self.hint


def _identity(value: Any) -> Any:
    return value


def in_checkpointed_flow() -> bool:
    """True when a call made here would be its own checkpoint call.

    Outside a flow, or nested inside another checkpoint (whose output already covers
    whatever runs in it), calls are plain calls.
    """
    return _runtime.current() is not None and _runtime.current_frame.get() is None


def run_sync(
    spec: CallSpec,
    body: Callable[[], T],
    *,
    explicit_id: str | None = None,
    dump: Callable[[T], Any] = _identity,
    load: Callable[[Any], T] = _identity,
    fingerprint: str | None = None,
) -> T:
    """Run `body` as one checkpoint call, or return its stored value if it completed.

    `fingerprint` (`_fingerprint.fingerprint` of the request) lets a resume check that
    the stored value answers the same request."""
    ctx = _runtime.current()
    if ctx is None or _runtime.current_frame.get() is not None:
        return body()
    call = _runtime.CheckpointRun(ctx, spec, explicit_id, fingerprint)
    hit, stored = call.reused()
    if hit:
        return load(stored)
    call.enter()
    try:
        try:
            value = body()
        except Exception as exc:
            call.failed(exc, 1)
            raise
        call.succeeded(dump(value), 1)
    finally:
        call.exit()
    return value


async def run_async(
    spec: CallSpec,
    body: Callable[[], Awaitable[T]],
    *,
    explicit_id: str | None = None,
    dump: Callable[[T], Any] = _identity,
    load: Callable[[Any], T] = _identity,
    fingerprint: str | None = None,
) -> T:
    """`run_sync` for a coroutine body."""
    ctx = _runtime.current()
    if ctx is None or _runtime.current_frame.get() is not None:
        return await body()
    call = _runtime.CheckpointRun(ctx, spec, explicit_id, fingerprint)
    hit, stored = call.reused()
    if hit:
        return load(stored)
    call.enter()
    try:
        try:
            value = await body()
        except Exception as exc:
            call.failed(exc, 1)
            raise
        call.succeeded(dump(value), 1)
    finally:
        call.exit()
    return value


@contextlib.contextmanager
def harness_run() -> Iterator[None]:
    """Around a harness's whole run: the tasks and threads it starts for itself take no
    branches of their own, so its calls are keyed by what the adapter gives them (model
    calls in order, tool calls by the tool-call id of the stored model response), not by
    the harness's internal task tree."""
    token = _branches.flat.set(True)
    try:
        yield
    finally:
        _branches.flat.reset(token)


def call_id(base: str) -> str | None:
    """An id for a call keyed by something the harness gives (a tool-call id): `base`,
    or `base#2`, ... if this run used it already. None outside a checkpointed flow."""
    ctx = _runtime.current()
    if ctx is None or _runtime.current_frame.get() is not None:
        return None
    return ctx.unique_id(base)


def branch_path() -> str:
    """The branch a call made here is keyed in: "" in the flow body (and outside a flow),
    "2", "2.1", ... in a task or thread the flow started (see `_branches`)."""
    ctx = _runtime.current()
    return ctx.branch_here().path if ctx is not None else ""


def in_legacy_execution() -> bool:
    """True in an execution recorded before branches existed: it keeps the keys the
    release that started it made, so an adapter keys and orders its calls as it did then."""
    ctx = _runtime.current()
    return ctx is not None and ctx.legacy


def current_key() -> str | None:
    """The key of the checkpoint call running in this context, if any."""
    frame = _runtime.current_frame.get()
    return frame.key if frame is not None else None


def log(**metadata: Any) -> None:
    """Attach metadata to the running checkpoint call (no-op outside one)."""
    frame = _runtime.current_frame.get()
    if frame is not None:
        frame.metadata.update(metadata)


def save_artifact(name: str, value: Any, *, producer: str) -> str | None:
    """Store `value` as an artifact of the running call (no-op outside a flow).

    Like `kitaru.save`, but the artifact names the call that produced it, so that
    `kitaru artifacts list` shows a prompt next to the response it led to.
    """
    ctx = _runtime.current()
    frame = _runtime.current_frame.get()
    if ctx is None or frame is None:
        return None
    artifact = ctx.artifact(
        value,
        name=name,
        producer=producer,
        producer_key=frame.key,
        what=f"{producer} {name!r}",
        version=ctx.next_version(name),
    )
    ctx.journal.put_artifact(artifact)
    return artifact.artifact_id
