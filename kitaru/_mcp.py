"""Flows as MCP tools: `kitaru mcp serve` (pip install "kitaru[mcp]").

Each flow is a tool whose input schema is its signature. A call starts an execution and
runs it in this process; the call returns the flow's result. A flow that waits for a
human is exactly an MCP request that needs input: the tool answers with the protocol's
`input_required` result (MCP 2026-07-28), one form per pending wait, and `request_state`
is the execution's id. The execution waits in the journal meanwhile, its process
released; the client's retry carries the answers, which are given to the waits, and the
execution continues. Nothing about the call lives in this process between the two
rounds, so a retry reaches a restarted server just as well. Clients on older protocol
versions are asked through `elicitation/create` in the middle of the call instead.

A long run reports progress (`notifications/progress`): first the execution's id, then
each checkpoint call as it is recorded. If this process dies mid-run, the execution is
`crashed` in the journal, and `kitaru_result` (one of the operator tools: list, get,
answer, replay, cancel, result) resumes it and returns its result: a client that kept
the id from the first progress message gets its answer from the next server.

Over HTTP every request carries a Kitaru API token (`Authorization: Bearer kt_...`,
`kitaru server token create`), checked as the REST server checks it: read tokens may
list and get, write and admin tokens may also start, answer, replay and cancel. Over
stdio the client is a local process that started this one, trusted as the CLI is.
"""

from __future__ import annotations

import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from kitaru.journal import ExecutionRecord, Journal

_T = typing.TypeVar("_T", bound=Callable[..., Any])

# The queue an execution started by a tool call is recorded in for the instant before
# this process takes it: no `kitaru worker` serves it unless told to.
QUEUE = "mcp"
# How often a running execution is looked at for progress.
POLL_SECONDS = 0.25
_PRIMITIVES = frozenset({"string", "number", "integer", "boolean"})
# The name a flow tool's MCP context is passed under (never a flow's own parameter).
_CTX = "kitaru_mcp_context"
# Kitaru's wait types that a form holds as one field, and the field's JSON type.
_FORM_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}


def _friendly(tool: _T) -> _T:
    """Kitaru's own errors reach the client as the CLI says them (one line, what to
    do), not as a bare "Error executing tool"."""
    from kitaru._errors import KitaruError

    @functools.wraps(tool)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await tool(*args, **kwargs)
        except KitaruError as exc:
            raise ToolError(str(exc)) from None

    return typing.cast(_T, wrapper)


class Server:
    """The tools of one `kitaru mcp serve`."""

    def __init__(self, journal: Journal, flows: dict[str, Any], *, tokens: bool) -> None:
        from kitaru.client import Executions

        self.journal = journal
        self.executions = Executions(journal)
        self.flows = flows
        self.tokens = tokens
        self.mcp = MCPServer(
            "kitaru",
            instructions="Durable flows as tools: a call runs one execution of the flow; "
            "a flow that waits for a person asks for input and continues with the answer.",
        )
        for name, flow in flows.items():
            self.mcp.add_tool(
                self._flow_tool(flow),
                name=name,
                description=(inspect.getdoc(flow.fn) or f"Run the flow {name}.")
                + "\n\nRuns one durable Kitaru execution; its id comes first in the progress.",
            )
        operators: list[Callable[..., Any]] = [
            self.kitaru_list, self.kitaru_get, self.kitaru_answer,
            self.kitaru_replay, self.kitaru_cancel, self.kitaru_result,
        ]  # fmt: skip
        for tool in operators:
            self.mcp.add_tool(tool)

    # -- the flows ---------------------------------------------------------------------
    def _flow_tool(self, flow: Any) -> Callable[..., Any]:
        """A tool function with the flow's parameters (and the MCP context)."""
        hints = typing.get_type_hints(flow.fn)
        params = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, Any))
            for p in inspect.signature(flow.fn).parameters.values()
            if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        positional = [
            p.name
            for p in inspect.signature(flow.fn).parameters.values()
            if p.kind == inspect.Parameter.POSITIONAL_ONLY
        ]
        ctx_param = inspect.Parameter(_CTX, inspect.Parameter.KEYWORD_ONLY, annotation=Context)

        @_friendly
        async def run_flow(**kwargs: Any) -> Any:
            from kitaru import _queue

            ctx: Context = kwargs.pop(_CTX)
            self._allow(ctx, write=True)
            if ctx.request_state:  # the retry of a call that asked for input
                record = self._execution(ctx.request_state, flow=flow.name)
                return await self._continue(ctx, record)
            args = tuple(kwargs.pop(name) for name in positional if name in kwargs)
            record, _new = await anyio.to_thread.run_sync(
                lambda: _queue.submit(flow, args, kwargs, queue=QUEUE)
            )
            return await self._drive(ctx, record.exec_id, self._resume(record.exec_id))

        run_flow.__signature__ = inspect.Signature([*params, ctx_param])  # type: ignore[attr-defined]
        run_flow.__annotations__ = {**{p.name: p.annotation for p in params}, _CTX: Context}
        run_flow.__name__ = flow.name
        return run_flow

    def _resume(self, exec_id: str) -> Callable[[], object]:
        from kitaru import _control
        from kitaru._errors import LeaseError

        def resume() -> object:
            try:
                return _control.resume(exec_id, journal=self.journal)
            except LeaseError:
                return None  # another process runs it: follow it in the journal

        return resume

    async def _drive(self, ctx: Context, exec_id: str, work: Callable[[], object]) -> Any:
        """Run `work` (which runs the execution) on a thread, telling progress, until the
        execution stops; then say how it ended."""
        await ctx.report_progress(0, None, f"execution {exec_id} started")
        done = anyio.Event()

        failed: list[BaseException] = []

        async def run() -> None:
            try:
                await anyio.to_thread.run_sync(work)
            except Exception as exc:  # said to the client below, as the CLI would say it
                failed.append(exc)
            finally:
                done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run)
            await self._report(ctx, exec_id, done)
        if failed:
            raise failed[0]
        record = await self._stopped(exec_id)
        return await self._outcome(ctx, record)

    async def _report(self, ctx: Context, exec_id: str, done: anyio.Event) -> None:
        told = 0
        while True:
            calls = await anyio.to_thread.run_sync(lambda: self.journal.calls(exec_id))
            for call in calls[told:]:
                told += 1
                await ctx.report_progress(
                    told, None, f"execution {exec_id}: {call.key} {call.status}"
                )
            if done.is_set():
                return
            with anyio.move_on_after(POLL_SECONDS):
                await done.wait()

    async def _stopped(self, exec_id: str) -> ExecutionRecord:
        """The record once nobody runs the execution (another process may)."""
        from kitaru._lease import effective_status

        while True:
            record = await anyio.to_thread.run_sync(lambda: self._execution(exec_id))
            if effective_status(record.status, record.owner, record.lease_until) != "running":
                return record
            await anyio.sleep(POLL_SECONDS)

    async def _outcome(self, ctx: Context, record: ExecutionRecord) -> Any:
        from kitaru._lease import effective_status

        status = effective_status(record.status, record.owner, record.lease_until)
        exec_id = record.exec_id
        if status == "completed":
            view = await anyio.to_thread.run_sync(lambda: self.executions.get(exec_id))
            return {"exec_id": exec_id, "status": status, "result": view.result}
        if status == "waiting":
            return await self._ask(ctx, record)
        raise ToolError(
            f"execution {exec_id} {status}"
            + (f": {record.error}" if record.error else "")
            + f"; see `kitaru executions get {exec_id}`"
            + ("; kitaru_result resumes it" if status == "crashed" else "")
        )

    # -- waits as input requests -------------------------------------------------------
    async def _ask(self, ctx: Context, record: ExecutionRecord) -> Any:
        waits = [w for w in self.journal.waits(record.exec_id) if w.status == "pending"]
        if not waits:  # a durable sleep: nothing to ask
            return {
                "exec_id": record.exec_id,
                "status": "waiting",
                "message": f"execution {record.exec_id} sleeps; kitaru_result gets its "
                "result once it woke and finished",
            }
        forms = {
            w.key: _form(w.question or f"{record.flow} waits for {w.name}", w.schema) for w in waits
        }
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return types.InputRequiredResult(
                input_requests={
                    key: types.ElicitRequest(
                        params=types.ElicitRequestFormParams(message=msg, requested_schema=schema)
                    )
                    for key, (msg, schema, _wrapped) in forms.items()
                },
                request_state=record.exec_id,
            )
        # An older client: ask in the middle of the call, then continue.
        answers: dict[str, Any] = {}
        session = ctx.request_context.session
        for key, (msg, schema, _wrapped) in forms.items():
            answers[key] = await session.elicit_form(
                message=msg, requested_schema=schema, related_request_id=ctx.request_id
            )
        return await self._answer(ctx, record, answers)

    async def _continue(self, ctx: Context, record: ExecutionRecord) -> Any:
        """The retry of a call that asked: give the answers, run on."""
        if record.status != "waiting":
            return await self._outcome(ctx, await self._stopped(record.exec_id))
        return await self._answer(ctx, record, dict(ctx.input_responses or {}))

    async def _answer(self, ctx: Context, record: ExecutionRecord, answers: dict[str, Any]) -> Any:
        waits = {w.key: w for w in self.journal.waits(record.exec_id) if w.status == "pending"}
        given: list[tuple[str, Any]] = []
        for key, wait in waits.items():
            reply = answers.get(key)
            if reply is None or getattr(reply, "action", None) != "accept":
                raise ToolError(
                    f"execution {record.exec_id} still waits for {key!r} (not answered); "
                    f"answer it later with `kitaru executions input {record.exec_id} {key} <json>`"
                )
            _msg, _schema, how = _form("", wait.schema)
            given.append((key, _read_answer(how, dict(reply.content or {}))))
        exec_id = record.exec_id

        def give() -> object:
            from kitaru import _control

            for key, value in given:
                _control.give_input(exec_id, key, value, resume_after=False, journal=self.journal)
            # Run it on here (an execution a tool started is in the `mcp` queue, which
            # would hand it to a worker).
            return self._resume(exec_id)()

        return await self._drive(ctx, exec_id, give)

    # -- operator tools ----------------------------------------------------------------
    @_friendly
    async def kitaru_list(
        self, ctx: Context, flow: str | None = None, status: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        """List executions, newest first (flow and status narrow it)."""
        self._allow(ctx, write=False)
        if flow is not None and flow not in self.flows:
            raise ToolError(f"this server serves the flows {', '.join(self.flows)}, not {flow!r}")
        found = [
            e.data
            for name in ([flow] if flow else list(self.flows))
            for e in self.executions.list(flow=name, status=status, limit=limit)
        ]
        found.sort(key=lambda e: e.get("created_at") or "", reverse=True)
        return {"executions": found[:limit]}

    @_friendly
    async def kitaru_get(self, ctx: Context, exec_id: str) -> dict[str, Any]:
        """One execution: status, checkpoints, waits, result or error."""
        self._allow(ctx, write=False)
        self._execution(exec_id)
        return dict(self.executions.get(exec_id).to_dict())

    @_friendly
    async def kitaru_answer(self, ctx: Context, exec_id: str, wait: str, value: Any) -> Any:
        """Answer a pending wait (by name or key) and run the execution on."""
        from kitaru import _control

        self._allow(ctx, write=True)
        record = self._execution(exec_id)
        if ctx.request_state:  # the retry of an answer that led to another question
            return await self._continue(ctx, self._execution(ctx.request_state))

        def give() -> object:
            _control.give_input(exec_id, wait, value, resume_after=False, journal=self.journal)
            return self._resume(exec_id)()

        del record
        return await self._drive(ctx, exec_id, give)

    @_friendly
    async def kitaru_replay(
        self,
        ctx: Context,
        exec_id: str,
        from_checkpoint: str,
        overrides: dict[str, Any] | None = None,
    ) -> Any:
        """Replay an execution from a checkpoint with this server's code: outputs above it
        are reused."""
        self._allow(ctx, write=True)
        self._execution(exec_id)
        if ctx.request_state:  # the retry of a replay that asked for input
            return await self._continue(ctx, self._execution(ctx.request_state))
        view = await anyio.to_thread.run_sync(
            lambda: self.executions.replay(
                exec_id, from_=from_checkpoint, overrides=overrides or {}
            )
        )
        return await self._outcome(ctx, self._execution(view.exec_id))

    @_friendly
    async def kitaru_cancel(self, ctx: Context, exec_id: str) -> dict[str, Any]:
        """Cancel an execution."""
        self._allow(ctx, write=True)
        self._execution(exec_id)
        view = await anyio.to_thread.run_sync(lambda: self.executions.cancel(exec_id))
        return {"exec_id": exec_id, "status": view.status}

    @_friendly
    async def kitaru_result(self, ctx: Context, exec_id: str) -> Any:
        """The result of an execution, waiting for it to stop: a crashed one (its server
        died mid-run) is resumed here first; a waiting one asks for its input."""
        from kitaru._lease import effective_status

        self._allow(ctx, write=True)
        record = self._execution(exec_id)
        if ctx.request_state:
            return await self._continue(ctx, record)
        if effective_status(record.status, record.owner, record.lease_until) == "crashed":
            return await self._drive(ctx, exec_id, self._resume(exec_id))
        return await self._outcome(ctx, await self._stopped(exec_id))

    # -- checks ------------------------------------------------------------------------
    def _execution(self, exec_id: str, *, flow: str | None = None) -> ExecutionRecord:
        """An execution of a flow this server serves, as it serves it (the same code):
        the tools never reach the journal's other executions, whose code they would run."""
        from kitaru import _loader

        record = self.journal.get_execution(exec_id)
        served = self.flows.get(record.flow) if record is not None else None
        if (
            record is None
            or served is None
            or (flow is not None and record.flow != flow)
            or _loader.registry_key(record.flow_ref, record.flow_file)
            != _loader.registry_key(*_loader.describe(served.fn)[:2])
        ):
            raise ToolError(
                f"no execution {exec_id!r} of the flows this server serves "
                f"({', '.join(self.flows)})"
            )
        return record

    def _allow(self, ctx: Context, *, write: bool) -> None:
        if not self.tokens:
            return
        caller = caller_of(self.journal, (ctx.headers or {}).get("authorization"))
        if caller is None:
            raise ToolError("a Kitaru API token is required: Authorization: Bearer kt_...")
        if caller.execution is not None:
            raise ToolError("a run token is for the container of its execution, not for MCP")
        if write and not caller.can_write:
            raise ToolError("this needs a write token (kitaru server token create --scope write)")


def caller_of(journal: Journal, header: str | None) -> Any:
    from kitaru.server import _tokens

    scheme, _, token = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return _tokens.verify(_tokens.token_store(journal), token.strip())


def _form(message: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """An elicitation form for a wait's schema (kitaru/_wait.py), and how to read the
    answer back: `fields` (a model of plain fields: the form is its JSON schema),
    `value` (bool, int, float, str: one field) or `json` (anything a form cannot hold:
    one text field with JSON in it)."""
    kind = schema.get("type")
    if kind in _FORM_TYPES:
        field = {"type": _FORM_TYPES[kind], "title": "Answer"}
        return (
            message,
            {"type": "object", "properties": {"value": field}, "required": ["value"]},
            "value",
        )
    if kind == "model":
        model = schema.get("json_schema") or {}
        props = model.get("properties")
        if (
            model.get("type") == "object"
            and isinstance(props, dict)
            and all(isinstance(p, dict) and p.get("type") in _PRIMITIVES for p in props.values())
        ):
            return message, model, "fields"
    field = {"type": "string", "title": "Answer (JSON)", "description": "a JSON value"}
    return (
        message,
        {"type": "object", "properties": {"value": field}, "required": ["value"]},
        "json",
    )


def _read_answer(how: str, content: dict[str, Any]) -> Any:
    if how == "fields":
        return content
    value = content.get("value")
    if how == "json" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def serve_http(server: Server, host: str, port: int, *, allowed_hosts: list[str]) -> None:
    """Streamable HTTP at /mcp, behind a token check on every request (401 without a
    live Kitaru API token: not even the tool list is shown)."""
    import uvicorn
    from mcp.server.transport_security import TransportSecuritySettings
    from starlette.responses import JSONResponse
    from starlette.types import ASGIApp, Receive, Scope, Send

    hosts = [f"{host}:{port}", host, f"127.0.0.1:{port}", f"localhost:{port}", *allowed_hosts]
    security = TransportSecuritySettings(
        allowed_hosts=hosts, allowed_origins=[f"http://{h}" for h in hosts]
    )
    app = server.mcp.streamable_http_app(transport_security=security, host=host)
    journal = server.journal

    def guarded(inner: ASGIApp) -> ASGIApp:
        async def check(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
                caller = await anyio.to_thread.run_sync(
                    lambda: caller_of(journal, headers.get("authorization"))
                )
                if caller is None:
                    refuse = JSONResponse(
                        {"error": "a Kitaru API token is required: Authorization: Bearer kt_..."},
                        status_code=401,
                    )
                    await refuse(scope, receive, send)
                    return
            await inner(scope, receive, send)

        return check

    uvicorn.run(guarded(app), host=host, port=port, log_level="warning")
