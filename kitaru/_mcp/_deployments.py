"""Deployments as MCP tools (`kitaru mcp serve --deployments`).

Each flow with a version behind the served tag is a tool. Its input schema is the one
recorded at deploy time (kitaru/deployments/_deploy.py `signature_of`: each parameter's
JSON schema; versions deployed before that have the parameters' JSON types only), so
this process imports none of the deployed code. A call invokes the tag exactly as
`kitaru deployments invoke` does: the tag picks the version (a canary included), which
runs in its image on its stack; the call follows the execution in the journal and
answers its waits there, and each new run is again a run of that image.
"""

from __future__ import annotations

import inspect
import warnings
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool

from kitaru._mcp._forms import CTX, friendly
from kitaru.journal import DeploymentRecord, Journal

if TYPE_CHECKING:
    from kitaru._mcp._server import Server

_VARIADIC = ("VAR_POSITIONAL", "VAR_KEYWORD")


class _Unset:
    """An argument the client left out: the deployed flow's own default applies."""


_UNSET = _Unset()


def served(journal: Journal, tag: str) -> dict[str, DeploymentRecord]:
    """Each flow whose `tag` points at a live version: the version it points at."""
    from kitaru._errors import NotFoundError
    from kitaru.deployments import live_deployment

    out: dict[str, DeploymentRecord] = {}
    for flow in sorted({d.flow for d in journal.list_deployments() if d.deleted_at is None}):
        found = journal.get_tag(flow, tag)
        if found is not None:
            out[flow] = live_deployment(journal, flow, found.version)
    if not out:
        raise NotFoundError(
            f"no flow has a deployment tagged {tag!r} in this journal; deploy one "
            "(kitaru deploy path/to/module.py:flow), or name another tag with --tag"
        )
    return out


def input_schema(deployment: DeploymentRecord) -> dict[str, Any]:
    """The tool's input schema, from the signature recorded at deploy time."""
    properties: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    required = []
    for p in deployment.signature:
        if p["kind"] in _VARIADIC:
            continue
        schema = dict(p.get("schema") or {})
        if not schema:  # deployed before schemas were recorded, or none could be said
            schema = {"type": p["json_type"]} if p.get("json_type") else {}
            schema["title"] = p["name"].replace("_", " ").title()
        defs.update(schema.pop("$defs", {}))
        properties[p["name"]] = schema
        if p["required"]:
            required.append(p["name"])
    out: dict[str, Any] = {
        "type": "object",
        "title": f"{deployment.flow}Arguments",
        "properties": properties,
    }
    if required:
        out["required"] = required
    if defs:
        out["$defs"] = defs
    return out


def tool(server: Server, deployment: DeploymentRecord) -> Tool:
    """The tool that invokes `deployment.flow` through the server's tag."""
    flow = deployment.flow
    names = [p["name"] for p in deployment.signature if p["kind"] not in _VARIADIC]
    positional = [p["name"] for p in deployment.signature if p["kind"] == "POSITIONAL_ONLY"]
    params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Any, default=_UNSET)
        for name in names
    ]
    ctx_param = inspect.Parameter(CTX, inspect.Parameter.KEYWORD_ONLY, annotation=Context)

    @friendly
    async def invoke_deployment(**kwargs: Any) -> Any:
        from kitaru import deployments

        ctx: Context = kwargs.pop(CTX)
        server.allow(ctx, write=True)
        if ctx.request_state:  # the retry of a call that asked for input
            return await server.carry_on(ctx, server.execution(ctx.request_state, flow=flow))
        given = {k: v for k, v in kwargs.items() if not isinstance(v, _Unset)}
        args = [given.pop(name) for name in positional if name in given]
        handle = await anyio.to_thread.run_sync(
            lambda: deployments.invoke(
                flow, args=args, kwargs=given, tag=server.tag, journal=server.journal
            )
        )
        return await server.drive(ctx, handle.exec_id, lambda: None)

    invoke_deployment.__signature__ = inspect.Signature([*params, ctx_param])  # type: ignore[attr-defined]
    invoke_deployment.__annotations__ = {**{n: Any for n in names}, CTX: Context}
    invoke_deployment.__name__ = flow
    description = (deployment.metadata.get("description") or f"Run the deployed flow {flow}.") + (
        f"\n\nInvokes the deployment's tag {server.tag!r} (version {deployment.version} when "
        "this server started): one durable Kitaru execution in the deployed image; its id "
        "comes first in the progress."
    )
    with warnings.catch_warnings():
        # The arguments' own model is plain `Any` with a marker default, which has no
        # JSON: the schema the client sees is the recorded one, set below.
        warnings.simplefilter("ignore")
        made = Tool.from_function(invoke_deployment, name=flow, description=description)
    return made.model_copy(update={"parameters": input_schema(deployment)})
