"""Fan-out: `kitaru.map` and `kitaru.submit` (and `checkpoint.map` / `.submit`).

Each item or submitted call runs in a branch of its own, taken in the caller's order
before anything starts (`_branches`), so a call's key names its item, never the order in
which items finished: `.map` over 20 items gives `1/search` ... `20/search` in the flow
body, on every run. Sync callables run on threads, async ones as tasks.

When an item fails, the items already running finish (their outputs are committed, so a
resume does not pay for them again) and the items not started yet are not started; then
the failure of the first failed item in input order is raised. An item that reaches a
`kitaru.wait` without input is no failure: the other items go on to their own waits, so
every question of a fan-out is asked at once. Threads cannot be stopped
from outside, and stopping a running task would throw away work already paid for, so a
failure never interrupts a running item.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from kitaru import _runtime
from kitaru._branches import in_branch, without_branch
from kitaru._errors import ExecutionSuspended, KitaruUsageError

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future

T = TypeVar("T")

# Threads of one `map` when no concurrency is given.
DEFAULT_THREADS = min(32, (os.cpu_count() or 1) + 4)


def is_async(fn: Any) -> bool:
    import functools

    while isinstance(fn, functools.partial):
        fn = fn.func
    flag = getattr(fn, "is_async", None)
    if isinstance(flag, bool):
        return flag
    from kitaru._checkpoint import is_coroutine_function

    return is_coroutine_function(fn)


def _items(iterables: tuple[Iterable[Any], ...], what: str) -> list[tuple[Any, ...]]:
    if not iterables:
        raise KitaruUsageError(f"{what} needs at least one iterable of inputs")
    try:
        return list(zip(*iterables, strict=True))
    except ValueError:
        raise KitaruUsageError(
            f"the iterables given to {what} have different lengths; give one input per item in each"
        ) from None


def _check_concurrency(concurrency: int | None) -> None:
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        raise KitaruUsageError(f"concurrency must be 1 or more (or None), not {concurrency!r}")


def _branch_context() -> contextvars.Context | None:
    """A context for the next task or thread started here: in the next child branch when
    here is a flow body, else None (run where it is, as a plain call)."""
    child = _runtime.next_child()
    return in_branch(child) if child is not None else None


def map(
    fn: Callable[..., Any],
    *iterables: Iterable[Any],
    concurrency: int | None = None,
) -> Any:
    """Call `fn` on each item, in parallel; return the results in input order.

    With several iterables, `fn` gets one argument from each (like the builtin `map`;
    they must have the same length). A sync `fn` runs on up to `concurrency` threads
    and `map` returns the list; an async one (`async def`, an async checkpoint) runs as
    tasks, at most `concurrency` at a time, and `map` returns an awaitable of the list.
    """
    _check_concurrency(concurrency)
    items = _items(iterables, "map()")
    if is_async(fn):
        return _map_tasks(fn, items, concurrency)
    return _map_threads(fn, items, concurrency)


class _NotStarted(Exception):
    """An item skipped because another item had failed before it could start."""


def _map_threads(
    fn: Callable[..., Any], items: list[tuple[Any, ...]], concurrency: int | None
) -> list[Any]:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if not items:
        return []
    failed = threading.Event()

    def item(args: tuple[Any, ...]) -> Any:
        if failed.is_set():
            raise _NotStarted
        try:
            return fn(*args)
        except ExecutionSuspended:
            raise  # a wait is no failure: the other items go on to their own waits
        except BaseException:
            failed.set()
            raise

    contexts = [_branch_context() or contextvars.copy_context() for _ in items]
    workers = min(concurrency or DEFAULT_THREADS, len(items))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kitaru-map") as pool:
        futures = [
            without_branch(pool.submit, ctx.run, item, args)
            for ctx, args in zip(contexts, items, strict=True)
        ]
    return _results_in_order([(f.exception(), f) for f in futures])


def _results_in_order(outcomes: list[tuple[BaseException | None, Any]]) -> list[Any]:
    """The results; else the first failure in input order (items never started aside);
    else, when items wait for input, the first wait (the others are recorded too, so a
    person sees every question at once)."""
    raised = [exc for exc, _ in outcomes if exc is not None and not isinstance(exc, _NotStarted)]
    for exc in raised:
        if not isinstance(exc, ExecutionSuspended):
            raise exc
    if raised:
        raise raised[0]
    return [done.result() for _, done in outcomes]


async def _map_tasks(
    fn: Callable[..., Awaitable[Any]], items: list[tuple[Any, ...]], concurrency: int | None
) -> list[Any]:
    import asyncio

    if not items:
        return []
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(concurrency or len(items))
    failed = False

    async def item(args: tuple[Any, ...]) -> Any:
        nonlocal failed
        async with slots:
            if failed:
                raise _NotStarted
            try:
                return await fn(*args)
            except ExecutionSuspended:
                raise
            except BaseException:
                failed = True
                raise

    tasks = [loop.create_task(item(args), context=_branch_context()) for args in items]
    try:
        await asyncio.wait(tasks)
    except BaseException:
        # The flow itself was cancelled: so are its items.
        for task in tasks:
            task.cancel()
        raise
    return _results_in_order([(None if t.cancelled() else t.exception(), t) for t in tasks])


def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """Start `fn(*args, **kwargs)` in a branch of its own and return at once.

    A sync `fn` runs on a thread of its own and you get a `concurrent.futures.Future`
    (a thread per call: a submitted call that submits and waits for more never waits for
    a free worker; bound how many run at once with `map(..., concurrency=N)`); an async
    one runs as an `asyncio.Task` (await it, or call `.result()` once it is done). Calls
    still running when the flow returns are waited for before the run ends.
    """
    context = _branch_context()
    if is_async(fn):
        return _submit_task(fn, args, kwargs, context)
    from concurrent.futures import Future

    future: Future[Any] = Future()
    run = (context or contextvars.copy_context()).run

    def call() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(run(fn, *args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)

    import threading

    thread = threading.Thread(target=call, name=f"kitaru-submit-{_name(fn)}")
    ctx = _runtime.current()
    if ctx is not None:
        ctx.track(thread)
    without_branch(thread.start)
    return future


def _name(fn: Any) -> str:
    return str(getattr(fn, "__name__", None) or type(fn).__name__)


def _submit_task(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    context: contextvars.Context | None,
) -> asyncio.Task[Any]:
    import asyncio

    loop = asyncio.get_running_loop()
    # An async checkpoint takes its key when called: call it in the new branch.
    coro = context.run(fn, *args, **kwargs) if context is not None else fn(*args, **kwargs)
    return loop.create_task(coro, context=context)
