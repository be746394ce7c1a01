"""`kitaru executions ...`"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import typer

from kitaru.cli._output import emit_json, print_execution, short_time, table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="List, inspect, resume, replay, answer and cancel executions.\n\n"
    "Example: `kitaru executions list --status waiting`",
    no_args_is_help=True,
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
PROJECT_OPT = typer.Option(
    None,
    "--project",
    help="The flow's project: where its code may be loaded from when the execution comes "
    "from a server (default: the current directory).",
)


def _use_project(project: str | None) -> None:
    """Make `project` the project of this command and of the processes it starts."""
    if project is None:
        return
    import os

    from kitaru._errors import KitaruUsageError

    if not os.path.isdir(project):
        raise KitaruUsageError(f"--project {project}: no such directory")
    os.environ["KITARU_PROJECT"] = os.path.abspath(project)


def _client() -> Any:
    from kitaru.client import KitaruClient

    return KitaruClient()


@contextlib.contextmanager
def _flow_output(as_json: bool) -> Iterator[None]:
    """With --json, what the flow prints goes to stderr so stdout stays one JSON document."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def _finish(view: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit_json(view)
    else:
        print_execution(view)
    if view["status"] in ("failed", "crashed"):
        raise typer.Exit(1)


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
    limit: int = typer.Option(50, "--limit", help="At most this many, newest first."),
    as_json: bool = JSON_OPT,
) -> None:
    """List executions, newest first. A `running` execution whose process died shows as
    `crashed`.

    Examples:

    - `kitaru executions list --status waiting`
    - `kitaru executions list --flow writer --limit 10 --json`
    - `kitaru executions list --flow writer --idempotency-key order-1234`
    """
    statuses = ("queued", "running", "waiting", "completed", "failed", "crashed", "cancelled")
    if status is not None and status not in statuses:
        from kitaru._errors import KitaruUsageError

        raise KitaruUsageError(f"unknown status {status!r}; use one of {', '.join(statuses)}")
    executions = _client().executions.list(
        flow=flow, status=status, idempotency_key=idempotency_key, limit=limit
    )
    if as_json:
        emit_json([e.to_dict() for e in executions])
        return
    if not executions:
        print("no executions" + (f" of flow {flow!r}" if flow else "") + " yet")
        return
    # The deployed version an execution ran, when any did (`kitaru deployments invoke`).
    deployed = any(e.data.get("deployment_version") for e in executions)
    table(
        ["execution", "flow", "status", "stack", *(["version"] if deployed else []), "created",
         "runs", "replay of"],
        [
            [
                e.exec_id,
                e.flow,
                e.status,
                _stack_text(e.data),
                *([e.data.get("deployment_version") or ""] if deployed else []),
                short_time(e.created_at),
                e.data.get("runs", 1),
                f"{e.replayed_from} @ {e.replay_point}" if e.replayed_from else "",
            ]
            for e in executions
        ],
    )  # fmt: skip


def _stack_text(view: dict[str, Any]) -> str:
    stack, orchestrator = view.get("stack", "local"), view.get("orchestrator", "local")
    return stack if orchestrator == stack else f"{stack} ({orchestrator})"


@app.command()
def get(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show an execution: status, result, and each checkpoint call (ran, from the journal,
    reused from a replay source, or failed). Exits 1 when the execution failed or crashed.

    Example: `kitaru executions get kx_01a21c6d03e6c01d6771b05dc136`
    """
    # A failed execution exits 1, as `resume` and `input` do when it fails again.
    _finish(_client().executions.get(exec_id).to_dict(), as_json)


@app.command()
def logs(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    checkpoint: str | None = typer.Option(None, "--checkpoint", help="Only this checkpoint key."),
    orchestrator: bool = typer.Option(
        False,
        "--orchestrator",
        help="The orchestrator's own logs of the latest run instead (docker logs, the Job's "
        "pod, CloudWatch Logs): what happened before and around the flow.",
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Print output as the execution prints it, until it ends or waits (exit 1 if "
        "it failed or crashed). With --json, one JSON object per line.",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Print what the execution wrote to stdout, stderr and logging, per checkpoint call.

    Examples:

    - `kitaru executions logs kx_01a21c6d03e6c01d6771b05dc136 --checkpoint draft`
    - `kitaru executions logs kx_01a21c6d03e6c01d6771b05dc136 --follow`
    - `kitaru executions logs kx_01a21c6d03e6c01d6771b05dc136 --orchestrator`
    """
    if orchestrator:
        _orchestrator_logs(exec_id, as_json)
        return
    client = _client()
    if follow and _has_feed(client.journal, exec_id):
        from kitaru.cli import _watch

        if checkpoint is not None:
            _check_checkpoint_key(client.journal, exec_id, checkpoint)
        _watch.follow_logs(
            client.journal, exec_id, checkpoint=checkpoint, as_json=as_json, poll=0.2
        )
        return
    lines = client.executions.logs(exec_id)
    if checkpoint is not None:
        _check_checkpoint_key(client.journal, exec_id, checkpoint)
        lines = [g for g in lines if g["checkpoint"] == checkpoint]
    if as_json:
        emit_json(lines)
        return
    current: tuple[Any, Any] | None = None
    for g in lines:
        header = (g["checkpoint"], g["run"])
        if header != current:
            current = header
            name = f"checkpoint {g['checkpoint']}" if g["checkpoint"] else "flow"
            print(f"── {name} (run {g['run']}) ──")
        text = g["text"]
        prefix = "[stderr] " if g["stream"] == "stderr" else ""
        print(prefix + text, end="" if text.endswith("\n") else "\n")
    if not lines:
        print("no output captured" + (f" in checkpoint {checkpoint}" if checkpoint else ""))
    record = client.journal.get_execution(exec_id)
    if record is not None and record.run_id is not None:
        print(
            f"(the {record.orchestrator} orchestrator's logs: kitaru executions logs {exec_id} --orchestrator)"
        )


def _has_feed(journal: Any, exec_id: str) -> bool:
    """Whether to follow the live feed: it has entries, or the execution may still write
    some (one that ended before feeds existed prints its stored logs instead)."""
    from kitaru import _follow, _lease
    from kitaru._errors import NotFoundError

    record = journal.get_execution(exec_id)
    if record is None:
        raise NotFoundError(
            f"execution {exec_id} not found; list them with `kitaru executions list`"
        )
    status = _lease.effective_status(record.status, record.owner, record.lease_until)
    return status not in _follow.STOPS or bool(journal.events(exec_id, limit=1))


@app.command()
def watch(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    as_json: bool = typer.Option(
        False, "--json", help="One JSON object per line (the last one has kind `end`)."
    ),
    poll: float = typer.Option(
        0.2, "--poll", min=0.05, max=60, help="Seconds between reads of the journal."
    ),
) -> None:
    """Follow an execution as it runs: calls as they start and end, events, output, waits.

    Each line is stamped with the time it happened. The command ends when the execution
    ends or waits for input, with a final line; exit code 1 if it failed or crashed.
    Works on the embedded journal and through a server.

    Example: `kitaru executions watch kx_01a21c6d03e6c01d6771b05dc136`
    """
    from kitaru.cli import _watch

    _watch.watch(_client().journal, exec_id, as_json=as_json, poll=poll)


def _check_checkpoint_key(journal: Any, exec_id: str, key: str) -> None:
    """A key the execution never reached is a typo, not a call that printed nothing."""
    keys = list(dict.fromkeys(c.key for c in journal.calls(exec_id)))
    if key not in keys:
        from kitaru._errors import NotFoundError

        raise NotFoundError(
            f"execution {exec_id} has no checkpoint call {key!r}; its checkpoint keys: "
            f"{', '.join(keys) or 'none'} (see: kitaru executions get {exec_id})"
        )


def _orchestrator_logs(exec_id: str, as_json: bool) -> None:
    from kitaru import _control
    from kitaru.stacks._submit import orchestrator_logs

    journal = _client().journal
    record = _control.get_execution(journal, exec_id)
    if record.run_id is None:
        from kitaru._errors import KitaruUsageError

        raise KitaruUsageError(
            f"execution {exec_id} ran in the process that started it, not on an orchestrator; "
            f"its output is in: kitaru executions logs {exec_id}"
        )
    text = orchestrator_logs(journal, record)
    if as_json:
        emit_json(
            {
                "exec_id": exec_id,
                "orchestrator": record.orchestrator,
                "run_id": record.run_id,
                "logs": text,
            }
        )
        return
    print(f"── {record.orchestrator} run {record.run_id} ──")
    print(text, end="" if text.endswith("\n") or not text else "\n")


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
    _finish(execution.to_dict(), as_json)


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
    _finish(execution.to_dict(), as_json)


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


def _pairs(items: list[str], option: str) -> dict[str, Any]:
    from kitaru import _control
    from kitaru._errors import KitaruUsageError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise KitaruUsageError(f"{option} expects KEY=JSON, got {item!r}")
        out[key] = _control.parse_json(raw, f"{option} {key}")
    return out


@app.command()
def replay(
    exec_id: str | None = typer.Argument(
        None, help="Source execution id (kx_...); or --flow to replay many."
    ),
    from_: str = typer.Option(
        ..., "--from", help="Checkpoint key to run again from (draft, draft#2)."
    ),
    override: list[str] = typer.Option(
        [], "--override", help="KEY=JSON: use this value as the output of checkpoint KEY."
    ),
    input_: list[str] = typer.Option(
        [], "--input", help="NAME=JSON: replace the flow argument NAME."
    ),
    detach: bool = typer.Option(
        False, "--detach", help="Run in the background and return at once."
    ),
    new_exec_id: str | None = typer.Option(None, "--exec-id", hidden=True),
    project: str | None = PROJECT_OPT,
    flow: str | None = typer.Option(
        None, "--flow", help="Replay many: the newest executions of this flow."
    ),
    status: str = typer.Option(
        "completed", "--status", help="With --flow: replay executions with this status."
    ),
    since: str | None = typer.Option(
        None, "--since", help="With --flow: only executions started within 30m, 12h, 7d, 2w."
    ),
    limit: int = typer.Option(20, "--limit", help="With --flow: at most this many."),
    concurrency: int = typer.Option(
        1, "--concurrency", help="With --flow: replays running at once (each its own process)."
    ),
    fail_on_change: bool = typer.Option(
        False, "--fail-on-change", help="With --flow: exit 1 if any output changed (for CI)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Start a new execution that reuses the source's checkpoint outputs before --from and
    runs that checkpoint and everything after it with the current code.

    With `--flow` instead of an id, replay many: each of the flow's newest executions from
    the same checkpoint, then a matrix of what changed per execution and checkpoint
    (same, changed, failed, new, missing). Exit 1 if a replay failed.

    Examples:

    - `kitaru executions replay kx_01a21c6d03e6c01d6771b05dc136 --from draft`
    - `kitaru executions replay kx_01a21c6d03e6c01d6771b05dc136 --from draft --override research='"new notes"' --input topic='"durable agents"'`
    - `kitaru executions replay --flow writer --since 7d --limit 50 --from draft --concurrency 4`
    """
    _use_project(project)
    overrides = _pairs(override, "--override")
    inputs = _pairs(input_, "--input")
    client = _client()
    if flow is not None or exec_id is None:
        from kitaru.cli import _cohort

        if exec_id is not None or inputs or detach:
            from kitaru._errors import KitaruUsageError

            raise KitaruUsageError(
                "--flow replays many executions: give no execution id, --input or --detach"
            )
        if flow is None:
            from kitaru._errors import KitaruUsageError

            raise KitaruUsageError(
                "name the execution to replay (kx_...), or --flow F to replay many"
            )
        with _flow_output(as_json):
            data = _cohort.replay_many(
                client, flow, from_, overrides, status=status, since=since, limit=limit,
                concurrency=concurrency, as_json=as_json,
            )  # fmt: skip
        _cohort.show(data, as_json=as_json, fail_on_change=fail_on_change)
        return
    with _flow_output(as_json):
        view = _replay(client, exec_id, from_, overrides, inputs, detach, new_exec_id)
    _finish(view, as_json)


def _replay(
    client: Any,
    exec_id: str,
    from_: str,
    overrides: dict[str, Any],
    inputs: dict[str, Any],
    detach: bool,
    new_exec_id: str | None,
) -> dict[str, Any]:
    if new_exec_id is not None:
        from kitaru import _control

        record = _control.replay(
            exec_id,
            from_=from_,
            overrides=overrides,
            inputs=inputs,
            journal=client.journal,
            new_exec_id=new_exec_id,
        )
        return dict(client.executions.get(record.exec_id).to_dict())
    return dict(
        client.executions.replay(
            exec_id, from_=from_, overrides=overrides, inputs=inputs, detach=detach
        ).to_dict()
    )
