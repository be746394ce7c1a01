"""`@checkpoint`: a function whose calls inside a flow run once and are then read back."""

from __future__ import annotations

import functools
import time
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec, TypeVar, cast, overload

from kitaru import _loader, _runtime
from kitaru._errors import KitaruUsageError

P = ParamSpec("P")
R = TypeVar("R")

_NO_HINT = object()
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at startup


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    code = getattr(fn, "__code__", None)
    if code is not None:
        return bool(code.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(fn)


def _check_name(name: str, what: str) -> str:
    if not name or "#" in name or name != name.strip():
        raise KitaruUsageError(
            f"{what} {name!r} is not a valid name; use a non-empty name without '#' or "
            "surrounding spaces"
        )
    return name


class Durable:
    """What `@checkpoint` and `@flow` share: the wrapped function, its name, retries, the
    pickle permission and the return annotation outputs load back as."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None, what: str, retries: int,
        allow_pickle: bool,
    ) -> None:  # fmt: skip
        if retries < 0:
            raise KitaruUsageError(f"retries must be 0 or more, not {retries}")
        self.fn = fn
        self.name = _check_name(name or fn.__name__, what)
        self.retries = retries
        self.allow_pickle = allow_pickle
        self.is_async = is_coroutine_function(fn)
        self._hint: Any = _NO_HINT

    def return_hint(self) -> Any:
        """The return annotation (the type outputs load back as), resolved on first use."""
        if self._hint is _NO_HINT:
            try:
                self._hint = typing.get_type_hints(self.fn).get("return")
            except Exception:
                self._hint = None
        return self._hint


class Checkpoint(Durable, Generic[P, R]):
    """A checkpointed function. Call it like the function it wraps.

    Inside a flow, each call is a checkpoint call keyed by the checkpoint's name and
    its occurrence (`draft`, `draft#2`, ...) or by `with_id(...)`. Outside a flow it
    is a plain call.
    """

    kind = "checkpoint"
    fn: Callable[P, R]

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: float = 0.0,
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(
            fn, name=name, what="checkpoint name", retries=retries, allow_pickle=allow_pickle
        )
        self.retry_delay = retry_delay
        self.func_ref = f"{_loader.module_ref(fn.__module__)}:{fn.__qualname__}"
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._invoke(None, args, kwargs)

    def with_id(self, checkpoint_id: str) -> Callable[P, R]:
        """This checkpoint, keyed by `checkpoint_id` instead of its occurrence number.

        Use it for calls whose order is not fixed (threads, `asyncio.gather` of
        work that is started conditionally): `fetch.with_id(f"fetch-{url}")(url)`.
        """
        _check_name(checkpoint_id, "checkpoint id")

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return self._invoke(checkpoint_id, args, kwargs)

        return call

    def _invoke(self, explicit_id: str | None, args: Any, kwargs: Any) -> R:
        ctx = _runtime.current()
        if ctx is None or _runtime.current_frame.get() is not None:
            # Outside a flow, or nested in another checkpoint (whose output covers this).
            return self.fn(*args, **kwargs)
        call = _runtime.CheckpointRun(ctx, self, explicit_id)
        if self.is_async:
            return cast(R, self._run_async(call, args, kwargs))
        hit, value = call.reused()
        if hit:
            return cast(R, value)
        call.enter()
        attempts = 0
        try:
            while True:
                attempts += 1
                try:
                    value = self.fn(*args, **kwargs)
                    break
                except Exception as exc:
                    if attempts > self.retries:
                        call.failed(exc, attempts)
                        raise
                    if self.retry_delay:
                        time.sleep(self.retry_delay * 2 ** (attempts - 1))
            call.succeeded(value, attempts)
        finally:
            call.exit()
        result: R = value
        return result

    async def _run_async(self, call: _runtime.CheckpointRun, args: Any, kwargs: Any) -> Any:
        import asyncio

        hit, value = call.reused()
        if hit:
            return value
        call.enter()
        fn = cast(Callable[..., Awaitable[Any]], self.fn)
        attempts = 0
        try:
            while True:
                attempts += 1
                try:
                    value = await fn(*args, **kwargs)
                    break
                except Exception as exc:
                    if attempts > self.retries:
                        call.failed(exc, attempts)
                        raise
                    if self.retry_delay:
                        await asyncio.sleep(self.retry_delay * 2 ** (attempts - 1))
            call.succeeded(value, attempts)
        finally:
            call.exit()
        return value

    def __repr__(self) -> str:
        return f"<checkpoint {self.name} ({self.func_ref})>"


@overload
def checkpoint(fn: Callable[P, R], /) -> Checkpoint[P, R]: ...


@overload
def checkpoint(
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    allow_pickle: bool = False,
) -> Callable[[Callable[P, R]], Checkpoint[P, R]]: ...


def checkpoint(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    allow_pickle: bool = False,
) -> Checkpoint[P, R] | Callable[[Callable[P, R]], Checkpoint[P, R]]:
    """Make a function a checkpoint: inside a flow, a completed call is never run again.

    `retries` re-runs a call that raised, waiting `retry_delay` seconds before the
    first retry and doubling each time. `allow_pickle` lets outputs that JSON cannot
    represent be pickled (pickled artifacts only load where their classes import).
    """
    if fn is not None:
        return Checkpoint(fn)

    def decorate(f: Callable[P, R]) -> Checkpoint[P, R]:
        return Checkpoint(
            f, name=name, retries=retries, retry_delay=retry_delay, allow_pickle=allow_pickle
        )

    return decorate
