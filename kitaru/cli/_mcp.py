"""`kitaru mcp serve`: flows and deployments as MCP tools (kitaru/_mcp/)."""

from __future__ import annotations

import contextlib
import sys

import typer

app = typer.Typer(
    rich_markup_mode="markdown",
    help='Serve flows and deployments as tools to MCP clients (pip install "kitaru[mcp]").\n\n'
    "Example: `kitaru mcp serve --flows agents.research --stdio`",
    no_args_is_help=True,
)


@app.command()
def serve(
    flows: list[str] = typer.Option(
        [],
        "--flows",
        help="Flows to serve as tools, run here from their code: `pkg.module` (all its "
        "flows), `pkg.module:flow` or `path/to/file.py[:flow]`. Repeat for more.",
    ),
    deployments: bool = typer.Option(
        False,
        "--deployments",
        help="Serve every deployed flow as a tool: a call invokes the version the tag "
        "(--tag) points at, in its image on its stack, as `kitaru deployments invoke` does.",
    ),
    tag: str = typer.Option(
        "default", "--tag", help="With --deployments: the tag that picks the version to run."
    ),
    stdio: bool = typer.Option(
        False, "--stdio", help="Speak MCP on stdin and stdout (what a desktop client starts)."
    ),
    http: int | None = typer.Option(
        None,
        "--http",
        min=0,
        max=65535,
        help="Serve MCP over streamable HTTP on this port (at /mcp; 0 picks a free one and "
        "prints it); every request needs a Kitaru API token.",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="With --http: the address to bind."),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        help="With --http: a Host header clients may use (name[:port]), besides the bound "
        "address; repeat for more (protects against DNS rebinding).",
    ),
) -> None:
    """Serve flows as MCP tools: each flow is a tool whose input schema is its
    signature, a call runs one durable execution, and a flow that waits for a person
    asks the client for input (the protocol's `input_required`, or elicitation for older
    clients) and continues with the answer. With `--deployments`, each deployed flow is
    a tool too, whose input schema is the signature recorded at deploy time; a call runs
    the deployed version in its own image, not the code here.

    Operator tools come with them: `kitaru_list`, `kitaru_get`, `kitaru_answer`,
    `kitaru_replay`, `kitaru_cancel` and `kitaru_result` (which resumes an execution
    whose server died mid-run). Over HTTP a read token may list and get; starting,
    answering, replaying and cancelling need a write token.

    Examples:

    - `kitaru mcp serve --flows agents.research --stdio`
    - `kitaru mcp serve --flows agents.py:review --http 8765`
    - `kitaru mcp serve --deployments --stdio`
    - `kitaru mcp serve --deployments --tag canary --flows agents.research --http 8765`
    """
    from kitaru._errors import KitaruUsageError

    if stdio == (http is not None):
        raise KitaruUsageError("choose one transport: --stdio or --http PORT")
    if tag != "default" and not deployments:
        raise KitaruUsageError("--tag picks the version of each deployment: add --deployments")
    if not flows and not deployments:
        raise KitaruUsageError(
            "nothing to serve: give --flows MODULE (flows run here from their code) and/or "
            "--deployments (deployed versions run in their images)"
        )
    try:
        from kitaru import _mcp
    except ImportError as exc:
        raise KitaruUsageError(
            f'kitaru mcp needs the MCP SDK ({exc}): pip install "kitaru[mcp]"'
        ) from None
    from kitaru import _queue
    from kitaru.journal import current_journal

    if stdio:
        # stdout is the protocol's: what the flows' modules print at import goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            loaded = _queue.load_flows(flows) if flows else {}
    else:
        loaded = _queue.load_flows(flows) if flows else {}
    from kitaru.deployments import check_tag

    journal = current_journal()
    deployed = _mcp.served(journal, check_tag(tag)) if deployments else {}
    server = _mcp.make_server(
        journal, loaded, tokens=http is not None, deployments=deployed, tag=tag
    )
    if stdio:
        server.mcp.run("stdio")
        return
    assert http is not None
    _mcp.serve_http(
        server.mcp, journal, host, http, allowed_hosts=allowed_host, names=server.names()
    )
