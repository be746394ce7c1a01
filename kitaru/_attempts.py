"""The attempts of one checkpoint call, written once for sync and async bodies.

`steps` is the protocol: a stored output (resume, replay) or a cached one ends the call
before any attempt; otherwise the call is entered, attempted until an attempt succeeds
or its retry policy gives up, recorded, and left. It runs no body and sleeps no wait
itself: `run` (sync) and `run_async` do, each the way its kind does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any, cast

from kitaru import _cache, _runtime

if TYPE_CHECKING:
    from kitaru._checkpoint import Checkpoint


def steps(
    cp: Checkpoint[Any, Any], call: _runtime.CheckpointRun, args: Any, kwargs: Any
) -> Generator[float | None, tuple[bool, Any] | None, tuple[bool, Any]]:
    """One checkpoint call, written once for sync and async bodies: a stored or
    cached output, else attempts until one succeeds or the retry policy gives up.

    It yields None for the caller to run an attempt and send back `(True, value)` or
    `(False, exception)`, or the seconds to wait before the next attempt (the caller
    sleeps as its kind does), and returns the call's outcome in the same form. It
    raises nothing a body raised: the caller does, so a `StopIteration` from a body
    stays one."""
    hit, value = call.reused()
    if hit:
        return True, value
    cached = None
    if cp.cache:
        cached, hit, value = _cache.find(call, cp, args, kwargs)
        if hit:
            return True, value
    call.enter()
    attempts = 0
    try:
        while True:
            attempts += 1
            outcome = yield None
            assert outcome is not None
            ok, value = outcome
            if ok:
                break
            wait = cp.retry_policy.wait_before_next(attempts, value)
            if wait is None:
                call.failed(value, attempts)
                return False, value
            yield wait
        call.succeeded(value, attempts)
        if cached is not None:
            _cache.remember(call, cached)
    finally:
        call.exit()
    return True, value


def run(cp: Checkpoint[Any, Any], call: _runtime.CheckpointRun, args: Any, kwargs: Any) -> Any:
    """A sync checkpoint call: `steps`, its attempts run here and its waits slept.

    A checkpoint with no cache and no timeout (most calls) takes `steps` written out
    without the generator, which costs every call a few per cent of its overhead; it
    does what `steps` does, in the same order."""
    if cp.cache or cp.timeout is not None:
        return _run_steps(cp, call, args, kwargs)
    hit, value = call.reused()
    if hit:
        return value
    call.enter()
    attempts = 1
    try:
        while True:
            try:
                value = cp.fn(*args, **kwargs)
                break
            except Exception as exc:
                wait = cp.retry_policy.wait_before_next(attempts, exc)
                if wait is None:
                    call.failed(exc, attempts)
                    raise
            time.sleep(wait)
            attempts += 1
        call.succeeded(value, attempts)
    finally:
        call.exit()
    return value


def _run_steps(
    cp: Checkpoint[Any, Any], call: _runtime.CheckpointRun, args: Any, kwargs: Any
) -> Any:
    protocol = steps(cp, call, args, kwargs)
    sent: tuple[bool, Any] | None = None
    try:
        while True:
            try:
                wait = protocol.send(sent)
            except StopIteration as done:
                ok, value = done.value
                break
            if wait is not None:
                time.sleep(wait)
                sent = None
                continue
            try:
                if cp.timeout is None:
                    sent = True, cp.fn(*args, **kwargs)
                else:
                    sent = True, run_with_timeout(cp, args, kwargs)
            except Exception as exc:
                sent = False, exc
    except BaseException:
        protocol.close()  # the call's frame ends as the exception leaves it
        raise
    if not ok:
        raise value
    return value


async def run_async(
    cp: Checkpoint[Any, Any], call: _runtime.CheckpointRun, args: Any, kwargs: Any
) -> Any:
    """An async checkpoint call: `steps`, its attempts awaited here and its waits slept."""
    import asyncio

    fn = cast(Callable[..., Awaitable[Any]], cp.fn)
    protocol = steps(cp, call, args, kwargs)
    sent: tuple[bool, Any] | None = None
    try:
        while True:
            try:
                wait = protocol.send(sent)
            except StopIteration as done:
                ok, value = done.value
                break
            if wait is not None:
                await asyncio.sleep(wait)
                sent = None
                continue
            try:
                if cp.timeout is None:
                    sent = True, await fn(*args, **kwargs)
                else:
                    try:
                        sent = True, await asyncio.wait_for(fn(*args, **kwargs), cp.timeout)
                    except TimeoutError:
                        raise cp._timed_out() from None
            except Exception as exc:
                sent = False, exc
    except BaseException:
        protocol.close()
        raise
    if not ok:
        raise value
    return value


def run_with_timeout(cp: Checkpoint[Any, Any], args: Any, kwargs: Any) -> Any:
    """Run a sync body on a thread of its own and stop waiting for it after the timeout.

    Python cannot stop a thread: a body past its timeout is abandoned and runs on in the
    background. The attempt has its own log buffer and metadata, added to the call's only
    if it finishes in time: what an abandoned body returns, prints or logs later is thrown
    away."""
    import contextvars
    import threading
    from concurrent.futures import Future
    from concurrent.futures import TimeoutError as FutureTimeout

    from kitaru._logs import LogBuffer, current_buffer

    call_frame, call_buffer = _runtime.current_frame.get(), current_buffer.get()
    assert call_frame is not None and call_buffer is not None
    frame = _runtime.CallFrame(call_frame.key)
    buffer = LogBuffer(call_buffer.exec_id, call_buffer.call_key, call_buffer.run)
    outcome: Future[Any] = Future()
    context = contextvars.copy_context()
    context.run(_runtime.current_frame.set, frame)
    context.run(current_buffer.set, buffer)

    def body() -> None:
        try:
            outcome.set_result(context.run(cp.fn, *args, **kwargs))
        except BaseException as exc:
            outcome.set_exception(exc)

    threading.Thread(target=body, name=f"kitaru-{cp.name}", daemon=True).start()
    try:
        value = outcome.result(timeout=cp.timeout)
    except FutureTimeout:
        raise cp._timed_out() from None
    finally:
        if outcome.done():
            call_frame.metadata.update(frame.metadata)
            call_buffer.records.extend(buffer.take())
    return value
