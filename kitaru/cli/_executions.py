"""`kitaru executions ...`: the sub-app, in the order its help lists the commands.

Listing, showing, resuming, cancelling and answering live here; logs and watch in
`_execution_logs`, replay in `_execution_replay`, export / import / delete in `_portable`
and `_gc` (mounted by `kitaru.cli`).
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from kitaru.cli._execution_common import (
    JSON_OPT,
    PROJECT_OPT,
    _client,
    _flow_output,
    _use_project,
)
from kitaru.cli._execution_list import get_execution, list_executions
from kitaru.cli._execution_logs import logs, watch
from kitaru.cli._execution_replay import replay
from kitaru.cli._output import LIMIT_MAX, emit_json, finish_execution, short_time, table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="List, inspect, resume, replay, answer and cancel executions.\n\n"
    "Example: `kitaru executions list --status waiting`",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    flow: str | None = typer.Option(
        None, "--flow", help="Only executions of this flow (with their replays)."
    ),
    status: str | None = typer.Option(
        None,
        "--status",
        help="queued, running, waiting, completed, failed, crashed or cancelled.",
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Only the execution a start with this key made (`idempotency_key=`).",
    ),
    limit: int = typer.Option(
        50, "--limit", min=0, max=LIMIT_MAX, help="At most this many, newest first."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """List executions, newest first. A `running` execution whose process died shows as
    `crashed`.

    Examples:

    - `kitaru executions list --status waiting`
    - `kitaru executions list --flow writer --limit 10 --json`
    - `kitaru executions list --flow writer --idempotency-key order-1234`
    """
    list_executions(flow, status, idempotency_key, limit, as_json)


@app.command()
def get(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show an execution: status, result, and each checkpoint call (ran, from the journal,
    reused from a replay source, or failed). Exits 1 when the execution failed or crashed.

    Example: `kitaru executions get kx_01a21c6d03e6c01d6771b05dc136`
    """
    get_execution(exec_id, as_json)


app.command()(logs)
app.command()(watch)


@app.command()
def resume(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    detach: bool = typer.Option(
        False, "--detach", help="Resume in the background and return at once."
    ),
    project: str | None = PROJECT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Continue a crashed, failed or waiting execution where it stopped. Completed
    checkpoints return their stored outputs; the rest run. Prints the execution when it ends.

    Example: `kitaru executions resume kx_01a21c6d03e6c01d6771b05dc136 --detach`
    """
    _use_project(project)
    with _flow_output(as_json):
        execution = _client().executions.resume(exec_id, detach=detach)
    finish_execution(execution.to_dict(), as_json)


@app.command()
def cancel(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    grace: float = typer.Option(
        10.0,
        "--grace",
        help="Seconds a running execution gets to reach a checkpoint boundary "
        "before its process is killed.",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Cancel a running, waiting or crashed execution. It never resumes by itself.

    Example: `kitaru executions cancel kx_01a21c6d03e6c01d6771b05dc136 --grace 30`
    """
    from kitaru import _control

    client = _client()
    how: list[str] = []
    _control.cancel(exec_id, grace=grace, journal=client.journal, report=how.append)
    view = client.executions.get(exec_id).to_dict()
    if as_json:
        emit_json(view)
    else:
        print(f"{view['exec_id']} {view['status']}" + "".join(f": {h}" for h in how))


@app.command("input")
def input_(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    wait: str = typer.Argument(..., help="Wait name or key (approve, approve#2)."),
    value: str = typer.Argument(..., help="The answer as JSON: true, 3, '\"text\"', '{\"k\": 1}'."),
    detach: bool = typer.Option(
        False, "--detach", help="Resume in the background and return at once."
    ),
    no_resume: bool = typer.Option(False, "--no-resume", help="Store the answer only."),
    project: str | None = PROJECT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Answer a pending wait and resume the execution. The value is checked against the
    wait's schema; an invalid value changes nothing.

    Examples:

    - `kitaru executions input kx_01a21c6d03e6c01d6771b05dc136 approve true`
    - `kitaru executions input kx_01a21c6d03e6c01d6771b05dc136 feedback '"shorter, please"' --detach`
    """

    _use_project(project)
    client = _client()
    parsed = _parse_answer(client, exec_id, wait, value)
    with _flow_output(as_json):
        if no_resume:
            execution = _store_only(client, exec_id, wait, parsed)
        else:
            execution = client.executions.input(exec_id, wait, parsed, detach=detach)
    finish_execution(execution.to_dict(), as_json)


def _parse_answer(client: Any, exec_id: str, wait: str, value: str) -> Any:
    """The answer as JSON; an answer that is not JSON gets a hint that fits the wait
    (`true` for a bool wait, `'"text"'` for a str wait)."""
    import json

    from kitaru import _control

    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    schema = _control.find_wait(client.journal, exec_id, wait).schema
    return _control.parse_json(value, "the input", schema=schema)


def _store_only(client: Any, exec_id: str, wait: str, value: Any) -> Any:
    from kitaru import _control

    _control.give_input(exec_id, wait, value, resume_after=False, journal=client.journal)
    return client.executions.get(exec_id)


@app.command()
def waits(as_json: bool = JSON_OPT) -> None:
    """List pending waits across all executions.

    Example: `kitaru executions waits --json`
    """
    pending = _client().executions.waits()
    if as_json:
        emit_json(pending)
        return
    if not pending:
        print("no pending waits")
        return
    table(
        ["execution", "wait", "question", "schema", "since", "status"],
        [
            [
                w["exec_id"],
                w["key"],
                w.get("question") or "",
                _schema_text(w["schema"]),
                short_time(w["since"]),
                w["status"],
            ]
            for w in pending
        ],
    )


@app.command()
def sweep(
    detach: bool = typer.Option(False, "--detach", help="Resume in the background."),
    project: str | None = PROJECT_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Resume every waiting execution whose wait passed its timeout, so the wait takes its
    default (or fails). Run it from cron, or let the server or a worker do it; one
    submitted to a queue goes back to its queue for a worker.

    Example: `kitaru executions sweep --detach`
    """
    from kitaru import _control, _views

    _use_project(project)
    client = _client()
    with _flow_output(as_json):
        records, errors = _control.sweep(detach=detach, journal=client.journal)
    views = [_views.execution_view(client.journal, r, detail=False) for r in records]
    for exec_id, error in errors.items():
        print(f"error: {exec_id}: {error}", file=sys.stderr)
    if as_json:
        emit_json(views)
    else:
        if not views and not errors:
            print("no timed-out waits")
        for v in views:
            print(f"{v['exec_id']} {v['status']}")
    if errors:
        raise typer.Exit(1)


def _schema_text(schema: dict[str, Any]) -> str:
    if schema.get("type") == "model":
        return str(schema.get("type_ref", "model")).split(":")[-1]
    return str(schema.get("type", "any"))


app.command()(replay)
