"""The operator tools: list, get, answer, replay, cancel and result, for executions of
what the server serves (kitaru/_mcp/_server.py `Server.execution` says which)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from kitaru._mcp._forms import friendly

if TYPE_CHECKING:
    from kitaru._mcp._server import Server


def tools(server: Server) -> list[Callable[..., Any]]:
    """The operator tools of `server`, as functions the MCP SDK registers by name."""

    @friendly
    async def kitaru_list(
        ctx: Context, flow: str | None = None, status: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        """List executions, newest first (flow and status narrow it)."""
        server.allow(ctx, write=False)
        served = [*server.flows, *server.deployments]
        if flow is not None and flow not in served:
            raise ToolError(f"this server serves the flows {server.names()}, not {flow!r}")
        found = [
            e.data
            for name in ([flow] if flow else served)
            for e in server.executions.list(flow=name, status=status, limit=limit)
            # A flow served from code lists its own runs; a deployed one its invocations.
            if (e.data.get("deployment_version") is not None) == (name in server.deployments)
        ]
        found.sort(key=lambda e: e.get("created_at") or "", reverse=True)
        return {"executions": found[:limit]}

    @friendly
    async def kitaru_get(ctx: Context, exec_id: str) -> dict[str, Any]:
        """One execution: status, checkpoints, waits, result or error."""
        server.allow(ctx, write=False)
        server.execution(exec_id)
        return dict(server.executions.get(exec_id).to_dict())

    @friendly
    async def kitaru_answer(ctx: Context, exec_id: str, wait: str, value: Any) -> Any:
        """Answer a pending wait (by name or key) and run the execution on."""
        server.allow(ctx, write=True)
        server.execution(exec_id)
        if ctx.request_state:  # the retry of an answer that led to another question
            return await server.carry_on(ctx, server.execution(ctx.request_state))
        return await server.drive(ctx, exec_id, server.give(exec_id, [(wait, value)]))

    @friendly
    async def kitaru_replay(
        ctx: Context, exec_id: str, from_checkpoint: str, overrides: dict[str, Any] | None = None
    ) -> Any:
        """Replay an execution from a checkpoint: outputs above it are reused. A flow
        replays with this server's code, a deployed version in its own image."""
        from kitaru.server import _actions

        server.allow(ctx, write=True)
        source = server.execution(exec_id)
        if ctx.request_state:  # the retry of a replay that asked for input
            return await server.carry_on(ctx, server.execution(ctx.request_state))
        if server.deployed(source):
            record = await anyio.to_thread.run_sync(
                lambda: _actions.replay(
                    server.journal, exec_id, from_=from_checkpoint, overrides=overrides,
                    inputs=None, server_url=None,
                )
            )  # fmt: skip
            return await server.drive(ctx, record.exec_id, lambda: None)
        view = await anyio.to_thread.run_sync(
            lambda: server.executions.replay(
                exec_id, from_=from_checkpoint, overrides=overrides or {}
            )
        )
        return await server.outcome(ctx, server.execution(view.exec_id))

    @friendly
    async def kitaru_cancel(ctx: Context, exec_id: str) -> dict[str, Any]:
        """Cancel an execution."""
        server.allow(ctx, write=True)
        server.execution(exec_id)
        view = await anyio.to_thread.run_sync(lambda: server.executions.cancel(exec_id))
        return {"exec_id": exec_id, "status": view.status}

    @friendly
    async def kitaru_result(ctx: Context, exec_id: str) -> Any:
        """The result of an execution, waiting for it to stop: a crashed one (its server
        or container died mid-run) is resumed first; a waiting one asks for its input."""
        from kitaru._lease import effective_status

        server.allow(ctx, write=True)
        record = server.execution(exec_id)
        if ctx.request_state:
            return await server.carry_on(ctx, record)
        if effective_status(record.status, record.owner, record.lease_until) == "crashed":
            return await server.drive(ctx, exec_id, server.resume(exec_id))
        return await server.outcome(ctx, await server.stopped(exec_id))

    return [kitaru_list, kitaru_get, kitaru_answer, kitaru_replay, kitaru_cancel, kitaru_result]
