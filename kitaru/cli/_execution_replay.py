"""`kitaru executions replay`: a new execution from a checkpoint of an old one, or many
(`--flow`). Mounted on the `executions` sub-app."""

from __future__ import annotations

from typing import Any

import typer

from kitaru.cli._execution_common import (
    JSON_OPT,
    PROJECT_OPT,
    _client,
    _flow_output,
    _use_project,
)
from kitaru.cli._output import LIMIT_MAX, finish_execution


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
    limit: int = typer.Option(
        20, "--limit", min=0, max=LIMIT_MAX, help="With --flow: at most this many."
    ),
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
    finish_execution(view, as_json)


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
