"""`@checkpoint`: a function whose calls inside a flow run once and are then read back."""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar, overload

from kitaru import _attempts, _cache, _loader, _runtime
from kitaru._errors import CheckpointTimeoutError, KitaruUsageError
from kitaru._fingerprint import cannot_fail, fingerprint
from kitaru._retry import RetryPolicy

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_NO_HINT = object()
_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at startup


def is_coroutine_function(fn: Callable[..., Any]) -> bool:
    code = getattr(fn, "__code__", None)
    if code is not None:
        return bool(code.co_flags & _CO_COROUTINE)
    import inspect

    return inspect.iscoroutinefunction(fn)


def _check_name(name: str, what: str) -> str:
    if not name or "#" in name or name != name.strip() or _looks_branched(name):
        raise KitaruUsageError(
            f"{what} {name!r} is not a valid name; use a non-empty name without '#' or "
            "surrounding spaces that does not start with digits and '/' (keys of calls in "
            "parallel branches look like that: 3/search)"
        )
    return name


def _looks_branched(name: str) -> bool:
    head, sep, _ = name.partition("/")
    return bool(sep) and all(part.isdigit() for part in head.split("."))


class Durable:
    """What `@checkpoint` and `@flow` share: the wrapped function, its name, retries, the
    pickle permission and the return annotation outputs load back as."""

    # "flow" or "checkpoint": lets the layers below `@flow` (deployments, stacks) tell
    # a flow apart without importing it (`is_flow`).
    kind: ClassVar[str] = "checkpoint"

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


def is_flow(obj: object) -> bool:
    """Whether `obj` is a `@flow`."""
    return isinstance(obj, Durable) and obj.kind == "flow"


class Checkpoint(Durable, Generic[P, R]):
    """A checkpointed function. Call it like the function it wraps.

    Inside a flow, each call is a checkpoint call keyed by the checkpoint's name and
    its occurrence in its branch (`draft`, `draft#2`, `3/draft`, ...) or by
    `with_id(...)`. Outside a flow it is a plain call.
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
        retry_policy: RetryPolicy | None = None,
        timeout: float | None = None,
        allow_pickle: bool = False,
        cache: bool = False,
        cache_ttl: float | timedelta | None = None,
        cache_key: Callable[..., Any] | None = None,
    ) -> None:
        policy = RetryPolicy.of(retries, retry_delay, retry_policy)
        super().__init__(
            fn,
            name=name,
            what="checkpoint name",
            retries=policy.max_attempts - 1,
            allow_pickle=allow_pickle,
        )
        if timeout is not None and (isinstance(timeout, bool) or not timeout > 0):
            raise KitaruUsageError(f"timeout must be a number of seconds above 0, not {timeout!r}")
        self.retry_policy = policy
        self.retry_delay = retry_delay
        self.timeout = timeout
        self.func_ref = f"{_loader.module_ref(fn.__module__)}:{fn.__qualname__}"
        if (cache_ttl is not None or cache_key is not None) and not cache:
            raise KitaruUsageError("cache_ttl and cache_key need cache=True")
        if cache_key is not None and not callable(cache_key):
            raise KitaruUsageError("cache_key must be a function of the call's arguments")
        self.cache = cache
        self.cache_ttl = _cache.ttl_seconds(cache_ttl)
        self.cache_key = cache_key
        self._source_hash: str | None = None
        functools.update_wrapper(self, fn)

    def source_hash(self) -> str:
        """What a cached call's function is known by (computed on first use)."""
        if self._source_hash is None:
            self._source_hash = _cache.source_hash(self.fn)
        return self._source_hash

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self._invoke(None, args, kwargs)

    def with_id(self, checkpoint_id: str) -> Callable[P, R]:
        """This checkpoint, keyed by `checkpoint_id` instead of its occurrence number.

        A call with an id is found again by its id alone, wherever and whenever it is
        made: `fetch.with_id(f"fetch-{url}")(url)`. Ids are unique in an execution.
        """
        _check_name(checkpoint_id, "checkpoint id")

        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            return self._invoke(checkpoint_id, args, kwargs)

        return call

    @overload
    def map(  # type: ignore[overload-overlap]
        self: Checkpoint[..., Coroutine[Any, Any, T]],
        *iterables: Iterable[Any],
        concurrency: int | None = None,
    ) -> Coroutine[Any, Any, list[T]]: ...

    @overload
    def map(
        self: Checkpoint[..., T], *iterables: Iterable[Any], concurrency: int | None = None
    ) -> list[T]: ...

    def map(self, *iterables: Iterable[Any], concurrency: int | None = None) -> Any:
        """Call this checkpoint on each item in parallel; the results in input order.

        Each item is its own branch (`1/name`, `2/name`, ... in the flow body), so a
        resume hands every item its own output whatever order they finish in. A sync
        checkpoint runs on up to `concurrency` threads and returns the list; an async
        one runs as tasks and returns an awaitable (`await search.map(queries)`). If an
        item fails, running items finish, items not started are not started, and the
        first failure in input order is raised.
        """
        from kitaru import _parallel

        return _parallel.map(self, *iterables, concurrency=concurrency)

    @overload
    def submit(  # type: ignore[overload-overlap]
        self: Checkpoint[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs
    ) -> asyncio.Task[T]: ...

    @overload
    def submit(self: Checkpoint[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]: ...

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Start one call in a branch of its own and return at once: a
        `concurrent.futures.Future` for a sync checkpoint, an `asyncio.Task` for an
        async one (`.result()` either way once it is done)."""
        from kitaru import _parallel

        return _parallel.submit(self, *args, **kwargs)

    def _invoke(self, explicit_id: str | None, args: Any, kwargs: Any) -> R:
        # (Every call's path: no typing.cast, and `_runtime.current()` only off the
        # flow's own context, where it has more to look at.)
        ctx = _runtime._current.get() or _runtime.current()
        if ctx is None or _runtime.current_frame.get() is not None:
            # Outside a flow, or nested in another checkpoint (whose output covers this).
            return self.fn(*args, **kwargs)
        if ctx.record.replayed_from is None or not cannot_fail(args, kwargs):
            # Digested before the call takes its key: an argument whose digest raises
            # fails the call before it is numbered, in every run alike.
            call = _runtime.CheckpointRun(ctx, self, explicit_id, fingerprint(args, kwargs))
        else:
            # A replay, and a digest that cannot raise: an output the replay copied or
            # overrode is reused whatever the call's inputs (CheckpointRun.check_reuse),
            # so only the other calls are digested.
            call = _runtime.CheckpointRun(ctx, self, explicit_id)
            done = ctx.completed.get(call.key)
            if done is None or (done.reused_from is None and not done.metadata.get("override")):
                call.fingerprint = fingerprint(args, kwargs)
        if self.is_async:
            return self._run_async(call, args, kwargs)  # type: ignore[return-value]
        return _attempts.run(self, call, args, kwargs)  # type: ignore[no-any-return]

    async def _run_async(self, call: _runtime.CheckpointRun, args: Any, kwargs: Any) -> Any:
        return await _attempts.run_async(self, call, args, kwargs)

    def _timed_out(self) -> CheckpointTimeoutError:
        return CheckpointTimeoutError(
            f"checkpoint {self.name!r} ran longer than its timeout of {self.timeout:g} s"
        )

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
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    allow_pickle: bool = False,
    cache: bool = False,
    cache_ttl: float | timedelta | None = None,
    cache_key: Callable[..., Any] | None = None,
) -> Callable[[Callable[P, R]], Checkpoint[P, R]]: ...


def checkpoint(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    retry_delay: float = 0.0,
    retry_policy: RetryPolicy | None = None,
    timeout: float | None = None,
    allow_pickle: bool = False,
    cache: bool = False,
    cache_ttl: float | timedelta | None = None,
    cache_key: Callable[..., Any] | None = None,
) -> Checkpoint[P, R] | Callable[[Callable[P, R]], Checkpoint[P, R]]:
    """Make a function a checkpoint: inside a flow, a completed call is never run again.

    `retries` re-runs a call that raised, waiting `retry_delay` seconds before the
    first retry and doubling each time; `retry_policy` (a `RetryPolicy`) says the same
    with a cap, jitter and exceptions never retried. `timeout` fails an attempt that runs
    longer than that many seconds with `CheckpointTimeoutError` (an async body is
    cancelled; a sync body is abandoned on its thread and its result thrown away).
    `allow_pickle` lets outputs that JSON cannot represent be pickled (pickled artifacts
    only load where their classes import).

    `cache=True` lets a call reuse the output of a completed call of an earlier execution
    made with the same function source and inputs (`cache_key(*args, **kwargs)`, when
    given, stands for the inputs), at most `cache_ttl` seconds old; `KITARU_CACHE=0` turns
    caching off everywhere. See kitaru/_cache.py.
    """
    if fn is not None:
        return Checkpoint(fn)

    def decorate(f: Callable[P, R]) -> Checkpoint[P, R]:
        return Checkpoint(
            f,
            name=name,
            retries=retries,
            retry_delay=retry_delay,
            retry_policy=retry_policy,
            timeout=timeout,
            allow_pickle=allow_pickle,
            cache=cache,
            cache_ttl=cache_ttl,
            cache_key=cache_key,
        )

    return decorate
