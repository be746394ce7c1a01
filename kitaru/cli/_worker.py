"""`kitaru worker` and `kitaru queues ...`"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import typer

from kitaru.cli._output import emit_json, table

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")

queues_app = typer.Typer(
    rich_markup_mode="markdown",
    help="See and limit the queues executions wait in for workers.\n\n"
    "Example: `kitaru queues list`",
    no_args_is_help=True,
)


def worker_command(
    flows: list[str] = typer.Option(
        ...,
        "--flows",
        help="Flows this worker runs: `pkg.module` (all its flows), `pkg.module:flow` or "
        "`path/to/script.py[:flow]`. Repeat for more.",
    ),
    queue: list[str] = typer.Option(
        ["default"], "--queue", help="A queue to take executions from (repeat for more)."
    ),
    concurrency: int = typer.Option(
        8, "--concurrency", help="At most this many executions at once in this worker."
    ),
    grace: float = typer.Option(
        30.0,
        "--grace",
        help="On SIGTERM or Ctrl-C, seconds running executions get to reach a checkpoint "
        "boundary and go back to their queue before they are killed (and queued again).",
    ),
    poll: float = typer.Option(
        0.1, "--poll", help="Seconds between looks at the queues when there is nothing to do."
    ),
    name: str | None = typer.Option(
        None, "--name", help="The worker's name in `kitaru queues show` (default host:pid)."
    ),
    until_empty: bool = typer.Option(
        False, "--until-empty", help="Exit once its queues are empty and nothing runs."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object per event (claimed, completed, ...)."
    ),
) -> None:
    """Run queued executions where the flows' code lives, each in its own process. Takes
    executions submitted with `flow.submit()`, waits answered through a server, the UI or
    a webhook, resumes requested there, and waits past their timeout; applies each
    queue's limits across all workers; on SIGTERM hands running executions back to their
    queue at a checkpoint boundary.

    Examples:

    - `kitaru worker --flows my_agents.flows --concurrency 8`
    - `kitaru worker --flows agent.py:review --queue approvals --queue default`
    """
    from kitaru import _queue
    from kitaru._errors import InvalidInputError
    from kitaru._worker import Worker
    from kitaru.journal import current_journal

    if not 1 <= concurrency <= 1024:
        raise InvalidInputError(f"--concurrency must be from 1 to 1024, not {concurrency}")
    if grace < 0 or poll <= 0 or poll > 60:
        raise InvalidInputError("--grace must be 0 or more and --poll from 0 to 60 seconds")
    queues = list(dict.fromkeys(_queue.check_name(q) for q in queue))
    loaded = _queue.load_flows(flows)
    journal = current_journal()

    def say(exec_id: str, event: str, detail: dict[str, Any]) -> None:
        if as_json:
            line = json.dumps(
                {
                    "time": round(time.time(), 3),
                    "event": event,
                    "exec_id": exec_id or None,
                    **detail,
                }
            )
        else:
            line = _describe(exec_id, event, detail)
        # One write per line: the worker and its children share this output, and a
        # line must never be split by another process's.
        sys.stdout.flush()
        os.write(sys.stdout.fileno(), (line + "\n").encode())

    worker = Worker(
        journal,
        loaded,
        queues=queues,
        concurrency=concurrency,
        grace=grace,
        poll=poll,
        name=name,
        until_empty=until_empty,
        say=say,
    )
    raise typer.Exit(worker.run())


def _describe(exec_id: str, event: str, d: dict[str, Any]) -> str:
    if event == "started":
        return (
            f"kitaru worker {d['worker']}: queues {', '.join(d['queues'])}; flows "
            f"{', '.join(d['flows'])}; up to {d['concurrency']} at once (Ctrl-C to stop)"
        )
    if event == "stopped":
        return f"kitaru worker {d['worker']}: stopped"
    if event == "claimed":
        return f"{exec_id} claimed: flow {d['flow']}, queue {d['queue']}, run {d['run']}"
    if event == "requeued":
        return f"{exec_id} back in its queue: {d['reason']}"
    took = f" in {d['seconds']:.2f}s" if d.get("seconds") is not None else ""
    error = f": {d['error']}" if d.get("error") else ""
    return f"{exec_id} {event}{took}{error}"


@queues_app.command("list")
def list_queues(as_json: bool = JSON_OPT) -> None:
    """Every queue with executions waiting or running, limits, or workers: depth, running,
    oldest waiting, limits.

    Example: `kitaru queues list --json`
    """
    from kitaru import _queue
    from kitaru.journal import current_journal

    views = _queue.queue_views(current_journal())
    if as_json:
        emit_json(views)
        return
    table(
        ["QUEUE", "WAITING", "RUNNING", "OLDEST", "CONCURRENCY", "RATE/MIN", "WORKERS"],
        [
            [
                v["name"],
                v["depth"],
                v["running"],
                _age(v["oldest_waiting_seconds"]),
                v["concurrency"] or "-",
                v["rate_per_minute"] or "-",
                len(v["workers"]),
            ]
            for v in views
        ],
    )


@queues_app.command("show")
def show_queue(
    name: str = typer.Argument(..., help="Queue name (default, approvals, ...)."),
    as_json: bool = JSON_OPT,
) -> None:
    """One queue: what waits and runs in it, its limits and the workers taking from it.

    Example: `kitaru queues show default`
    """
    from kitaru import _queue
    from kitaru.journal import current_journal

    view = _queue.queue_view(current_journal(), name)
    if as_json:
        emit_json(view)
        return
    print(f"queue {view['name']}")
    print(f"  waiting      {view['depth']} (oldest {_age(view['oldest_waiting_seconds'])})")
    print(
        f"  running      {view['running']} (started in the last minute: "
        f"{view['started_last_minute']})"
    )
    print(f"  concurrency  {view['concurrency'] or 'no limit'}")
    print(
        f"  rate         {view['rate_per_minute'] or 'no limit'}"
        + (" per minute" if view["rate_per_minute"] else "")
    )
    if not view["workers"]:
        print(
            "  workers      none; start one: kitaru worker --flows pkg.module "
            f"--queue {view['name']}"
        )
    for w in view["workers"]:
        print(
            f"  worker       {w['name']}: {w['running']}/{w['concurrency']} running, "
            f"seen {w['seen_seconds_ago']:g}s ago"
        )


@queues_app.command("set")
def set_queue(
    name: str = typer.Argument(..., help="Queue name."),
    concurrency: int | None = typer.Option(
        None,
        "--concurrency",
        help="At most this many executions of the queue run at once, "
        "across all workers (omit: no limit).",
    ),
    rate: int | None = typer.Option(
        None, "--rate", help="At most this many executions start per minute (omit: no limit)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Set a queue's limits, enforced by every worker through the journal. Setting a limit
    replaces both; a queue needs no setting to be used.

    Example: `kitaru queues set approvals --concurrency 16 --rate 120`
    """
    from kitaru import _queue
    from kitaru.journal import current_journal

    journal = current_journal()
    _queue.set_limits(journal, name, concurrency=concurrency, rate_per_minute=rate)
    view = _queue.queue_view(journal, name)
    if as_json:
        emit_json(view)
    else:
        print(
            f"queue {name}: concurrency {concurrency or 'no limit'}, rate "
            f"{f'{rate} per minute' if rate else 'no limit'}"
        )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
