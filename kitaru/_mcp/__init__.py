"""Flows and deployments as MCP tools: `kitaru mcp serve` (pip install "kitaru[mcp]").

Each flow is a tool whose input schema is its signature. A call starts an execution and
runs it in this process; the call returns the flow's result. With `--deployments`, each
deployed flow is a tool too (kitaru/_mcp/_deployments.py): a call invokes the version
its tag picks, in that version's image on its stack, and follows it in the journal.

A flow that waits for a human is exactly an MCP request that needs input: the tool
answers with the protocol's `input_required` result (MCP 2026-07-28), one form per
pending wait, and `request_state` is the execution's id. The execution waits in the
journal meanwhile, its process released; the client's retry carries the answers, which
are given to the waits, and the execution continues. Nothing about the call lives in
this process between the two rounds, so a retry reaches a restarted server just as well.
Clients on older protocol versions are asked through `elicitation/create` in the middle
of the call instead.

A long run reports progress (`notifications/progress`): first the execution's id, then
each checkpoint call as it is recorded. If this process dies mid-run, the execution is
`crashed` in the journal, and `kitaru_result` (one of the operator tools:
kitaru/_mcp/_operators.py) resumes it and returns its result: a client that kept the id
from the first progress message gets its answer from the next server.

Over HTTP every request carries a Kitaru API token (`Authorization: Bearer kt_...`,
`kitaru server token create`), checked as the REST server checks it: read tokens may
list and get, write and admin tokens may also start, answer, replay and cancel. Over
stdio the client is a local process that started this one, trusted as the CLI is.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver.tools import Tool

from kitaru._mcp import _deployments, _operators
from kitaru._mcp._deployments import served
from kitaru._mcp._http import caller_of, serve_http
from kitaru._mcp._server import QUEUE, Server
from kitaru.journal import DeploymentRecord, Journal

__all__ = ["QUEUE", "Server", "caller_of", "make_server", "serve_http", "served"]


def make_server(
    journal: Journal,
    flows: dict[str, Any],
    *,
    tokens: bool,
    deployments: dict[str, DeploymentRecord] | None = None,
    tag: str = "default",
) -> Server:
    """A server with every tool: the flows, the deployments, the operator tools."""

    def tools(server: Server) -> list[Tool]:
        return [
            *(_deployments.tool(server, d) for d in server.deployments.values()),
            *(Tool.from_function(fn) for fn in _operators.tools(server)),
        ]

    return Server(journal, flows, tokens=tokens, deployments=deployments, tag=tag, tools=tools)
