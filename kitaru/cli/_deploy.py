"""`kitaru deploy TARGET` and `kitaru deployments invoke`: recording a deployed version
of a flow, and running one. The rest of `kitaru deployments` is in `_deployments`."""

from __future__ import annotations

import sys
from typing import Any

import typer

from kitaru.cli._output import emit_json, print_execution

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")


def _journal() -> Any:
    from kitaru.journal import current_journal

    return current_journal()


def deploy_command(
    target: str = typer.Argument(
        ..., help="The flow: path/to/module.py:flow_name (or package.module:flow_name)."
    ),
    tag: str = typer.Option("default", "--tag", help="Tag to point at the new version."),
    no_tag: bool = typer.Option(False, "--no-tag", help="Record the version, move no tag."),
    stack: str | None = typer.Option(
        None, "--stack", help="Stack to build for and run on (default: the flow's, the active)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Deploy a flow: build (or reuse) the locked image of its project on the stack, push
    it, and record the next immutable version, which the tag then points at. An unchanged
    project reuses the image already in the registry.

    Examples:

    - `kitaru deploy examples/deploy_agent/agent.py:support`
    - `kitaru deploy examples/deploy_agent/agent.py:support --no-tag --stack prod`
    """
    from kitaru import deployments

    flow = deployments.load_target(target)
    record = deployments.deploy(
        flow,
        tag=None if no_tag else tag,
        stack=stack,
        journal=_journal(),
        progress=lambda message: print(message, file=sys.stderr),
    )
    view = deployments.deployment_view(record, _journal().list_tags(record.flow), detail=True)
    if as_json:
        emit_json(view)
        return
    how = (
        "reused: the project's lock and source are unchanged, nothing was rebuilt"
        if record.reused
        else "built and pushed"
    )
    print(f"deployed {record.flow} version {record.version}" + ("" if no_tag else f" (tag {tag})"))
    print(f"image    {record.image}")
    print(f"         {how}")
    print(f"stack    {record.stack} ({record.orchestrator})")
    print(f"invoke:  kitaru deployments invoke {record.flow} --args '{{...}}'")


def invoke(
    flow: str = typer.Argument(..., help="Flow name."),
    tag_name: str | None = typer.Option(
        None, "--tag", help="Run the version this tag picks (default: default)."
    ),
    version: int | None = typer.Option(None, "--version", help="Run this version instead."),
    args: str = typer.Option(
        "{}",
        "--args",
        help='Arguments as JSON: an object of keyword arguments ({"topic": "x"}) or an '
        'array of positional ones (["x"]).',
    ),
    invocation_id: str | None = typer.Option(
        None,
        "--invocation-id",
        help="Your id for this invocation (a request id); a retry with the same id picks the "
        "same version of a canary. Default: a new one.",
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="A name for this start (a webhook delivery id, an order number): invoking the "
        "flow again with the same key starts nothing and shows the execution the first "
        "invocation started. Also the invocation id when --invocation-id is not given.",
    ),
    queue: str | None = typer.Option(
        None,
        "--queue",
        help="Put it in this queue for `kitaru worker` (one whose code is the version's "
        "snapshot) instead of starting its image on the stack.",
    ),
    priority: int = typer.Option(0, "--priority", help="With --queue: higher runs first."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the execution and show it."),
    timeout: float = typer.Option(600, "--timeout", help="Seconds --wait waits at most."),
    as_json: bool = JSON_OPT,
) -> None:
    """Run a deployed version in its own image on its stack (not the code on this
    machine), or put it in a queue for a worker. Prints the execution id; follow it with
    `kitaru executions get`.

    Examples:

    - `kitaru deployments invoke support --args '{"ticket": "my order is late"}' --wait`
    - `kitaru deployments invoke support --version 2 --args '{"ticket": "refund"}' --invocation-id ticket-1234`
    - `kitaru deployments invoke support --queue support --args '{"ticket": "refund"}'`
    - `kitaru deployments invoke support --args '{"ticket": "refund"}' --idempotency-key order-1234`
    """
    from kitaru import deployments
    from kitaru._control import parse_json
    from kitaru._errors import InvalidInputError

    parsed = parse_json(args, "--args")
    if isinstance(parsed, dict):
        positional, keywords = [], parsed
    elif isinstance(parsed, list):
        positional, keywords = parsed, {}
    else:
        raise InvalidInputError(
            "--args must be a JSON object of keyword arguments or an array of positional ones"
        )
    handle = deployments.invoke(
        flow,
        args=positional,
        kwargs=keywords,
        tag=tag_name,
        version=version,
        invocation_id=invocation_id,
        journal=_journal(),
        queue=queue,
        priority=priority,
        idempotency_key=idempotency_key,
    )
    if wait:
        handle.wait(timeout)
    from kitaru.client import Executions

    view = Executions(handle._journal or _journal()).get(handle.exec_id).to_dict()
    # True when the key found the execution an earlier invocation started (nothing new).
    view["reused"] = handle.reused
    if as_json:
        emit_json(view)
    elif wait:
        print_execution(view)
    elif handle.reused:
        print(
            f"idempotency key {idempotency_key!r} already started {handle.exec_id} "
            f"({view['status']}); nothing new was started"
        )
        print(f"follow it with: kitaru executions get {handle.exec_id}")
    else:
        print(
            f"invoked {flow} version {view['deployment_version']} "
            f"(invocation {view['invocation_id']}) as {handle.exec_id}"
        )
        if queue is not None:
            print(f"queued in {queue!r} for a worker: kitaru worker --flows ... --queue {queue}")
        print(f"follow it with: kitaru executions get {handle.exec_id}")
    if wait and view["status"] in ("failed", "crashed"):
        raise typer.Exit(1)
