"""`kitaru executions logs / watch`: what an execution printed, stored or as it runs,
and its orchestrator's own logs. Mounted on the `executions` sub-app."""

from __future__ import annotations

from typing import Any

import typer

from kitaru.cli._execution_common import JSON_OPT, _client
from kitaru.cli._output import emit_json


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
