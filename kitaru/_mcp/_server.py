"""The tools of one `kitaru mcp serve`, and how a call follows its execution.

A call has three steps, whichever tool starts it: the work (on a thread: run the flow
here, or hand a deployed version to its stack), the progress (the journal's checkpoint
calls, polled until the execution stops), the outcome (the result, a question, or an
error that says where to look).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from kitaru._mcp._forms import CTX, form, friendly, read_answer
from kitaru.journal import DeploymentRecord, ExecutionRecord, Journal

# The queue an execution started by a tool call is recorded in for the instant before
# this process takes it: no `kitaru worker` serves it unless told to.
QUEUE = "mcp"
# How often a running execution is looked at for progress.
POLL_SECONDS = 0.25


class Server:
    """The tools of one `kitaru mcp serve`: `flows` run here, from their code;
    `deployments` (flow name: the version `tag` pointed at when the server started)
    run in their images on their stacks, invoked through `tag`."""

    def __init__(
        self,
        journal: Journal,
        flows: dict[str, Any],
        *,
        tokens: bool,
        deployments: dict[str, DeploymentRecord] | None = None,
        tag: str = "default",
        tools: Callable[[Server], list[Tool]] | None = None,
    ) -> None:
        """`tools`: the server's other tools (operators, deployments), made for it."""
        from kitaru._errors import KitaruUsageError
        from kitaru.client import Executions

        self.journal = journal
        self.executions = Executions(journal)
        self.flows = flows
        self.deployments = deployments or {}
        self.tag = tag
        self.tokens = tokens
        both = sorted(set(flows) & set(self.deployments))
        if both:
            raise KitaruUsageError(
                f"{', '.join(both)} would be two tools of one name: from --flows (the code "
                "here) and from --deployments (the deployed version); serve it one way"
            )
        self.mcp = MCPServer(
            "kitaru",
            instructions="Durable flows as tools: a call runs one execution of the flow; "
            "a flow that waits for a person asks for input and continues with the answer.",
            tools=tools(self) if tools is not None else [],
        )
        for name, flow in flows.items():
            self.mcp.add_tool(
                self._flow_tool(flow),
                name=name,
                description=(inspect.getdoc(flow.fn) or f"Run the flow {name}.")
                + "\n\nRuns one durable Kitaru execution; its id comes first in the progress.",
            )

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
        ctx_param = inspect.Parameter(CTX, inspect.Parameter.KEYWORD_ONLY, annotation=Context)

        @friendly
        async def run_flow(**kwargs: Any) -> Any:
            from kitaru import _queue

            ctx: Context = kwargs.pop(CTX)
            self.allow(ctx, write=True)
            if ctx.request_state:  # the retry of a call that asked for input
                record = self.execution(ctx.request_state, flow=flow.name)
                return await self.carry_on(ctx, record)
            args = tuple(kwargs.pop(name) for name in positional if name in kwargs)
            record, _new = await anyio.to_thread.run_sync(
                lambda: _queue.submit(flow, args, kwargs, queue=QUEUE)
            )
            return await self.drive(ctx, record.exec_id, self.resume(record.exec_id))

        run_flow.__signature__ = inspect.Signature([*params, ctx_param])  # type: ignore[attr-defined]
        run_flow.__annotations__ = {**{p.name: p.annotation for p in params}, CTX: Context}
        run_flow.__name__ = flow.name
        return run_flow

    # -- where an execution runs -------------------------------------------------------
    def deployed(self, record: ExecutionRecord) -> bool:
        """Whether it runs a deployed version (in its image), not the code here."""
        return record.deployment_version is not None

    def resume(self, exec_id: str) -> Callable[[], object]:
        """Continue the execution where it runs: here for a flow, from its code; on its
        stack, in its image, for a deployed version (this process runs none of it)."""
        from kitaru import _control
        from kitaru._errors import LeaseError
        from kitaru.server import _actions

        def resume() -> object:
            try:
                if self.deployed(_control.get_execution(self.journal, exec_id)):
                    return _actions.resume(self.journal, exec_id, server_url=None)
                return _control.resume(exec_id, journal=self.journal)
            except LeaseError:
                return None  # another process runs it: follow it in the journal

        return resume

    def give(self, exec_id: str, given: list[tuple[str, Any]]) -> Callable[[], object]:
        """Answer waits (by name or key), then continue the execution where it runs."""
        from kitaru import _control
        from kitaru.server import _actions

        def give() -> object:
            # A deployed version's answers are checked against the stored schema, as the
            # server checks them: its model classes are not imported here.
            deployed = self.deployed(_control.get_execution(self.journal, exec_id))
            for key, value in given:
                if deployed:
                    _actions.answer(self.journal, exec_id, key, value, resume=False)
                else:
                    _control.give_input(
                        exec_id, key, value, resume_after=False, journal=self.journal
                    )
            return self.resume(exec_id)()

        return give

    # -- following a call --------------------------------------------------------------
    async def drive(self, ctx: Context, exec_id: str, work: Callable[[], object]) -> Any:
        """Run `work` (which runs or hands on the execution) on a thread, telling
        progress, until the execution stops; then say how it ended."""
        await ctx.report_progress(0, None, f"execution {exec_id} started")
        done = anyio.Event()

        failed: list[BaseException] = []

        async def run() -> None:
            try:
                await anyio.to_thread.run_sync(work)
                await self.stopped(exec_id)
            except Exception as exc:  # said to the client below, as the CLI would say it
                failed.append(exc)
            finally:
                done.set()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(run)
            await self._report(ctx, exec_id, done)
        if failed:
            raise failed[0]
        return await self.outcome(ctx, await self.stopped(exec_id))

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

    async def stopped(self, exec_id: str) -> ExecutionRecord:
        """The record once nobody runs the execution (another process may) and no
        orchestrator is about to start it."""
        from kitaru._lease import effective_status

        def look() -> ExecutionRecord:
            from kitaru.stacks._submit import reconcile_if_stale

            record = self.execution(exec_id)
            if record.run_id is not None and record.status in ("queued", "running"):
                # On an orchestrator: ask it, should the run never start or die unseen
                # (as `kitaru deployments invoke --wait` does).
                record = reconcile_if_stale(self.journal, record)
            return record

        while True:
            record = await anyio.to_thread.run_sync(look)
            status = effective_status(record.status, record.owner, record.lease_until)
            starting = status == "queued" and self.deployed(record) and record.queue is None
            if status != "running" and not starting:
                return record
            await anyio.sleep(POLL_SECONDS)

    async def outcome(self, ctx: Context, record: ExecutionRecord) -> Any:
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
            w.key: form(w.question or f"{record.flow} waits for {w.name}", w.schema) for w in waits
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

    async def carry_on(self, ctx: Context, record: ExecutionRecord) -> Any:
        """The retry of a call that asked: give the answers, run on."""
        if record.status != "waiting":
            return await self.outcome(ctx, await self.stopped(record.exec_id))
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
            _msg, _schema, how = form("", wait.schema)
            given.append((key, read_answer(how, dict(reply.content or {}))))
        # A flow runs on here (an execution a tool started is in the `mcp` queue, which
        # would hand it to a worker); a deployed version in a new run of its image.
        return await self.drive(ctx, record.exec_id, self.give(record.exec_id, given))

    # -- checks ------------------------------------------------------------------------
    def execution(self, exec_id: str, *, flow: str | None = None) -> ExecutionRecord:
        """An execution of what this server serves, as it serves it: a flow's from the
        same code, a deployment's invoked from a deployed version. The tools never reach
        the journal's other executions, whose code they would run."""
        from kitaru import _loader

        record = self.journal.get_execution(exec_id)
        if record is not None and flow in (None, record.flow):
            if self.deployed(record):
                if record.flow in self.deployments:
                    return record
            else:
                served = self.flows.get(record.flow)
                if served is not None and _loader.registry_key(
                    record.flow_ref, record.flow_file
                ) == _loader.registry_key(*_loader.describe(served.fn)[:2]):
                    return record
        raise ToolError(
            f"no execution {exec_id!r} of the flows this server serves ({self.names()})"
        )

    def names(self) -> str:
        return ", ".join([*self.flows, *(f"{name} (deployed)" for name in self.deployments)])

    def allow(self, ctx: Context, *, write: bool) -> None:
        from kitaru._mcp._http import caller_of

        if not self.tokens:
            return
        caller = caller_of(self.journal, (ctx.headers or {}).get("authorization"))
        if caller is None:
            raise ToolError("a Kitaru API token is required: Authorization: Bearer kt_...")
        if caller.execution is not None:
            raise ToolError("a run token is for the container of its execution, not for MCP")
        if write and not caller.can_write:
            raise ToolError("this needs a write token (kitaru server token create --scope write)")
