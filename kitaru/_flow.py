"""`@flow`: a function whose runs are durable executions."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kitaru import _loader, _runtime
from kitaru._checkpoint import Durable, is_coroutine_function
from kitaru._errors import (
    ConfigurationError,
    JournalUnavailableError,
    KitaruUsageError,
    at_call_site,
)
from kitaru._handle import ExecutionHandle
from kitaru.journal import (
    TERMINAL_STATUSES,
    DeploymentRecord,
)

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Flow(Durable, Generic[P, R]):
    """A durable function. `run()` starts an execution; calling it runs one and returns
    its value."""

    kind = "flow"

    def __init__(
        self,
        fn: Callable[P, Any],
        *,
        name: str | None = None,
        retries: int = 0,
        stack: str | None = None,
        allow_pickle: bool = False,
    ) -> None:
        super().__init__(
            fn, name=name, what="flow name", retries=retries, allow_pickle=allow_pickle
        )
        self.stack = stack
        self.flow_ref, self.flow_file, self.import_path = _loader.describe(fn)
        _loader.registry[_loader.registry_key(self.flow_ref, self.flow_file)] = self
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn

    @overload
    def run(self, *args: P.args, **kwargs: P.kwargs) -> ExecutionHandle[R]: ...

    @overload
    def run(self, *args: Any, idempotency_key: str | None, **kwargs: Any) -> ExecutionHandle[R]: ...

    def run(self, *args: Any, **kwargs: Any) -> ExecutionHandle[R]:
        """Start an execution on the active stack and return its handle.

        On the local stack the flow runs in this process: the handle comes back when
        the execution completed, failed, or paused at a wait. On a stack that runs
        executions elsewhere (docker, kubernetes, ...) it comes back once the execution
        is submitted; `handle.result()` waits for it.

        It never raises for how the execution ended (`handle.result()` does). An
        execution that waits, fails or is cancelled here is said in one line on stderr
        with the command that comes next (`kitaru executions input ...`, `kitaru
        executions get ...`); on other stacks `handle.wait()` says it, a crash included.
        `KITARU_QUIET=1` silences it; unset, a stderr that is no terminal hears only
        failures (kitaru/_speak.py).

        `idempotency_key`: a name for this start (a request id, a webhook delivery id).
        A second start of this flow with the same key starts nothing: it returns the
        handle of the execution the first one started, as it is now (`handle.reused` is
        True), finished or not; a failed one is not run again (start with a new key, or
        resume it). The key is the flow's `run` option, never passed to the flow
        function (docs/operations.md, "Idempotent starts").
        """
        if _loader.loading.get():
            raise _loader.StopImport
        from kitaru.stacks._submit import run_flow

        key = kwargs.pop("idempotency_key", None)
        try:
            handle: ExecutionHandle[R] = run_flow(self, args, kwargs, idempotency_key=key)
        except (ConfigurationError, JournalUnavailableError) as exc:
            raise at_call_site(exc) from None
        return handle

    def submit(
        self,
        *args: Any,
        queue: str = "default",
        priority: int = 0,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> ExecutionHandle[R]:
        """Put a new execution in `queue` for a worker (`kitaru worker`) and return its
        handle at once; nothing runs in this process. Higher `priority` runs first, then
        the longest waiting. `handle.result()` waits for it. `idempotency_key`: as for
        `run()`, a second submit with the key returns the first one's execution."""
        if _loader.loading.get():
            raise _loader.StopImport
        from kitaru import _idempotency, _queue, _speak

        try:
            _speak.mode()  # a bad KITARU_QUIET is refused before anything is recorded
            record, new = _queue.submit(
                self, args, kwargs, queue=queue, priority=priority, idempotency_key=idempotency_key
            )
        except ConfigurationError as exc:
            raise at_call_site(exc) from None
        handle: ExecutionHandle[R] = ExecutionHandle(
            record.exec_id, hint=self.return_hint(), allow_pickle=self.allow_pickle
        )
        if not new:
            handle.reused = True
            _idempotency.said(record, handle.status)
        return handle

    def deploy(self, tag: str | None = "default", stack: str | None = None) -> DeploymentRecord:
        """Build (or reuse) the locked image of this flow's project on `stack` (default:
        the flow's or the active stack), push it, record the next immutable version and
        point `tag` at it (None: leave the tags as they are). Returns the version."""
        from kitaru.deployments import deploy

        return deploy(self, tag=tag, stack=stack)

    def invoke(
        self,
        *args: Any,
        tag: str | None = None,
        version: int | None = None,
        invocation_id: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> ExecutionHandle[R]:
        """Run a deployed version of this flow, not the code here: the one `tag` points at
        (default `default`; a canary tag splits invocations by weight, the same
        `invocation_id` always landing on the same version) or `version`, in its image
        on its stack, or, with `queue`, on a worker whose code is that version's
        snapshot. Returns the handle at once; `handle.result()` waits.
        `idempotency_key`: as for `run()` (and the invocation id when none is given)."""
        from kitaru.deployments import invoke

        handle: ExecutionHandle[R] = invoke(
            self.name,
            args=args,
            kwargs=kwargs,
            tag=tag,
            version=version,
            invocation_id=invocation_id,
            hint=self.return_hint(),
            queue=queue,
            priority=priority,
            idempotency_key=idempotency_key,
        )
        return handle

    def _call(self, args: Any, kwargs: Any) -> Any:
        if _runtime.current() is not None:
            # A flow called inside a flow is part of the outer execution.
            return self.fn(*args, **kwargs)
        return self.run(*args, **kwargs).result()

    def __repr__(self) -> str:
        return f"<flow {self.name} ({self.flow_ref})>"


class SyncFlow(Flow[P, R]):
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run an execution and return its value (raises if it fails or waits)."""
        if _loader.loading.get():
            raise _loader.StopImport
        result: R = self._call(args, kwargs)
        return result


class AsyncFlow(Flow[P, R]):
    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run an execution and return its value (raises if it fails or waits)."""
        if _loader.loading.get():
            raise _loader.StopImport
        if _runtime.current() is not None:
            value: R = await self.fn(*args, **kwargs)
            return value
        import asyncio

        handle = await asyncio.to_thread(self.run, *args, **kwargs)
        return handle.result()


@overload
def flow(fn: Callable[P, Coroutine[Any, Any, T]], /) -> AsyncFlow[P, T]: ...  # type: ignore[overload-overlap]


@overload
def flow(fn: Callable[P, T], /) -> SyncFlow[P, T]: ...


@overload
def flow(
    *,
    name: str | None = None,
    retries: int = 0,
    stack: str | None = None,
    allow_pickle: bool = False,
) -> _FlowDecorator: ...


def flow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retries: int = 0,
    stack: str | None = None,
    allow_pickle: bool = False,
) -> Any:
    """Make a function a durable flow.

    `retries` re-runs a failed execution (its completed checkpoints are reused);
    `stack` names the stack it runs on instead of the active one.
    """
    if fn is not None:
        return _make(fn, name=None, retries=0, stack=None, allow_pickle=False)
    return _FlowDecorator(name=name, retries=retries, stack=stack, allow_pickle=allow_pickle)


class _FlowDecorator:
    def __init__(self, **options: Any) -> None:
        self.options = options

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, T]], /) -> AsyncFlow[P, T]: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, fn: Callable[P, T], /) -> SyncFlow[P, T]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any:
        return _make(fn, **self.options)


def _make(fn: Callable[..., Any], **options: Any) -> Flow[Any, Any]:
    if isinstance(fn, Flow):
        raise KitaruUsageError(f"{fn!r} is already a flow")
    cls = AsyncFlow if is_coroutine_function(fn) else SyncFlow
    return cls(fn, **options)


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES
