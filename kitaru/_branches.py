"""Branches: where in a flow's tree of tasks and threads a checkpoint call is made.

A call's key must not depend on which thread or task reaches it first. So every task
and thread that a flow starts gets a branch of its own, named by its place in the tree:
the flow body is the root (""), the tasks and threads it starts are "1", "2", ... in
the order it starts them, the ones "2" starts are "2.1", "2.2", ... Creation order is
what the flow's own code fixes; completion order is what the scheduler fixes. Calls are
numbered within their branch (`search`, `search#2`), so a flow that starts no task or
thread keeps the keys it always had, and a call in branch "3" is `3/search`.

The branch travels in a context variable. asyncio copies context variables into every
task it creates and `asyncio.to_thread` into its thread, but a copy shares the parent's
branch; plain threads and executor work items start with no context at all. So the
first execution in a process installs small wrappers, each a no-op outside a
flow: `BaseEventLoop.create_task` (every asyncio task: `gather`, `TaskGroup`,
`wait_for`, ...; the coroutine `run_until_complete` waits for stays in the caller's
branch, as `asyncio.run`'s main task does), `ThreadPoolExecutor.submit` (`map`, `run_in_executor`, `to_thread`)
and `Thread.start`. Each takes the next child branch of the branch it is called from,
in the caller's own order, and runs the new task, work item or thread in it. The worker
threads an executor starts for itself belong to no branch: which work item starts one
depends on timing.

`asyncio.as_completed`, which makes its tasks from a set (in an order that changes from
one process to the next), is wrapped to make them in the caller's order. Daemon threads
and anyio's worker threads take no branch: they are a program's machinery (a library's
helper thread, a pool's workers), often started lazily on first use, and numbering them
would shift every later branch with the history of the process.

What the wrappers cannot see (a loop that is not asyncio's own, such as uvloop; a thread
started from C; a daemon thread that makes checkpoint calls) shares its parent's
numbering, as before; the input fingerprint of every call still turns most mix-ups into
an error instead of a wrong output.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from concurrent.futures import Future, ThreadPoolExecutor

SEPARATOR = "/"


class Branch:
    """One task or thread of a flow (or the flow body itself, whose path is "")."""

    __slots__ = ("children", "occurrences", "owner", "path", "pos", "wait_occurrences")

    def __init__(self, path: str, owner: object) -> None:
        self.path = path
        # The execution this branch belongs to: a branch seen in a context that runs
        # another execution (a flow started from inside a flow's thread) is not used.
        self.owner = owner
        self.children = 0
        self.pos = 0  # checkpoint calls and waits made in this branch so far
        self.occurrences: dict[str, int] = {}
        self.wait_occurrences: dict[str, int] = {}

    def key(self, name: str, n: int) -> str:
        base = name if n == 1 else f"{name}#{n}"
        return f"{self.path}{SEPARATOR}{base}" if self.path else base

    def child(self) -> Branch:
        """The next task or thread started from this branch (call under the owner's lock)."""
        self.children += 1
        path = f"{self.path}.{self.children}" if self.path else str(self.children)
        return Branch(path, self.owner)

    def describe(self) -> str:
        return f"branch {self.path}" if self.path else "the flow body"


current_branch: contextvars.ContextVar[Branch | None] = contextvars.ContextVar(
    "kitaru_branch", default=None
)
# Inside a harness run (an agent framework's own loop), the tasks and threads the
# harness starts stay in the branch the run was started in: they are the harness's
# machinery, not the flow's fan-out, and the adapter keys its calls itself.
flat: contextvars.ContextVar[bool] = contextvars.ContextVar("kitaru_flat", default=False)

# Set by the runtime: the next child of the branch running here, or None when the code
# here is not a flow body (outside a flow, or inside a checkpoint call).
_next_child: Callable[[], Branch | None] = lambda: None  # noqa: E731
# Packages whose thread classes are a pool's workers (like an executor's).
_POOL_MODULES = ("anyio.",)
_threads_wrapped = False
_tasks_wrapped = False
_install_lock = threading.Lock()


def in_branch(branch: Branch, context: contextvars.Context | None = None) -> contextvars.Context:
    """A copy of the current context (or `context` itself) in which `branch` runs."""
    ctx = contextvars.copy_context() if context is None else context
    ctx.run(current_branch.set, branch)
    return ctx


def _carried_context(fn: Any) -> contextvars.Context | None:
    """The context a work item or thread target will switch to itself: `Context.run`
    (`asyncio.to_thread` hands the executor `partial(context.run, func)`; a user may
    pass `copy_context().run` as a thread's target)."""
    if isinstance(fn, functools.partial):
        fn = fn.func
    owner = getattr(fn, "__self__", None)
    return owner if isinstance(owner, contextvars.Context) else None


def _enter(carried: contextvars.Context | None, child: Branch) -> None:
    """Make `child` the branch inside a context the work will switch to itself."""
    if carried is not None:
        try:
            carried.run(current_branch.set, child)
        except RuntimeError:
            pass  # the context is running elsewhere: the work shares its branch


def without_branch(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn` where no branch is current: threads it starts are nobody's branch."""
    token = current_branch.set(None)
    try:
        return fn(*args, **kwargs)
    finally:
        current_branch.reset(token)


def install(next_child: Callable[[], Branch | None]) -> None:
    """Wrap thread start and executor submission once per process, and asyncio's task
    creation when asyncio is imported: now if it is, else the moment it is (a flow that
    never uses asyncio does not pay for importing it)."""
    global _next_child, _threads_wrapped, _tasks_wrapped
    _next_child = next_child
    if _threads_wrapped and _tasks_wrapped:
        return
    with _install_lock:
        if not _threads_wrapped:
            _wrap_threads()
            _threads_wrapped = True
        if not _tasks_wrapped:
            if "asyncio" in sys.modules:
                _wrap_tasks()
            else:
                sys.meta_path.insert(0, _WhenAsyncioIsImported())
            _tasks_wrapped = True


class _WhenAsyncioIsImported:
    """A one-time import hook: once the `asyncio` package has been executed, wrap it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "asyncio":
            return None
        sys.meta_path.remove(self)
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _ThenWrap(spec.loader)  # type: ignore[assignment]
        return spec


class _ThenWrap:
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        _wrap_tasks()


def _wrap_tasks() -> None:
    import asyncio

    loop_create_task = asyncio.BaseEventLoop.create_task

    def create_task(
        self: asyncio.BaseEventLoop, coro: Any, *, name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:  # fmt: skip
        # A task given its own context (asyncio.run's main task) is not a new branch.
        if context is None and (child := _next_child()) is not None:
            context = in_branch(child)
        return loop_create_task(self, coro, name=name, context=context)

    loop_run = asyncio.BaseEventLoop.run_until_complete

    def run_until_complete(self: asyncio.BaseEventLoop, future: Any) -> Any:
        # The caller waits for this coroutine: it runs in the caller's branch, as it does
        # under asyncio.run, whose main task has a context of its own.
        if asyncio.iscoroutine(future):
            future = self.create_task(future, context=contextvars.copy_context())
        return loop_run(self, future)

    tasks_as_completed = asyncio.as_completed

    def as_completed(fs: Any, *, timeout: float | None = None) -> Any:
        # asyncio makes the tasks from a set, in an order that changes from one process
        # to the next; make them here, in the order the caller gave.
        if current_branch.get() is not None:
            fs = [asyncio.ensure_future(f) for f in fs]
        return tasks_as_completed(fs, timeout=timeout)

    asyncio.BaseEventLoop.create_task = create_task  # type: ignore[method-assign,assignment]
    asyncio.BaseEventLoop.run_until_complete = run_until_complete  # type: ignore[method-assign]
    asyncio.as_completed = asyncio.tasks.as_completed = as_completed


def _wrap_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    pool_submit = ThreadPoolExecutor.submit

    def submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        child = _next_child()
        if child is None:
            return pool_submit(self, fn, *args, **kwargs)
        _enter(_carried_context(fn), child)
        item = in_branch(child)
        future: Future[Any] = without_branch(pool_submit, self, item.run, fn, *args, **kwargs)
        return future

    thread_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        # A daemon thread is the program's machinery (a library's helper), and so are a
        # pool's workers (anyio's), often started lazily, on first use: numbering them
        # would shift every branch after them with the history of the process. They take
        # no branch (a pool hands each job its caller's context itself).
        machinery = self.daemon or type(self).__module__.startswith(_POOL_MODULES)
        child = None if machinery else _next_child()
        if child is not None:
            _enter(_carried_context(getattr(self, "_target", None)), child)
            ctx = in_branch(child)
            self.run = functools.partial(ctx.run, self.run)  # type: ignore[method-assign]
        thread_start(self)

    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]
    threading.Thread.start = start  # type: ignore[method-assign]
