"""`kitaru schedules ...`: start flows and deployments on a cron expression."""

from __future__ import annotations

import time
from typing import Any

import typer

from kitaru.cli._output import LIMIT_MAX, emit_json, table

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Start a flow or a deployment on a cron expression; a server or `kitaru worker` "
    "fires each tick once.\n\n"
    "Example: `kitaru schedules create hourly --flow reports:daily --cron '0 * * * *'`",
    no_args_is_help=True,
)


def view(s: Any) -> dict[str, Any]:
    from kitaru._views import iso

    return {
        "name": s.name,
        "flow": s.flow,
        "kind": s.target.get("kind"),
        "deployment_tag": s.target.get("tag") if s.target.get("kind") == "deployment" else None,
        "queue": s.target.get("queue"),
        "cron": s.cron,
        "timezone": s.timezone,
        "catchup": s.catchup,
        "paused": s.paused,
        "next_tick": None if s.paused else iso(s.next_tick),
        "args": {"args": s.args.get("args", []), "kwargs": s.args.get("kwargs", {})},
        "created_at": iso(s.created_at),
        "updated_at": iso(s.updated_at),
    }


def run_view(r: Any) -> dict[str, Any]:
    from kitaru._views import iso

    return {
        "schedule": r.schedule,
        "tick": iso(r.tick),
        "status": r.status,
        "exec_id": r.exec_id,
        "execution_status": r.execution_status,
        "error": r.error,
        "by": r.by,
        "created_at": iso(r.created_at),
    }


def _journal() -> Any:
    from kitaru.journal import current_journal

    return current_journal()


def _get(journal: Any, name: str) -> Any:
    from kitaru._errors import NotFoundError

    found = journal.get_schedule(name)
    if found is None:
        raise NotFoundError(f"no schedule named {name!r}; see: kitaru schedules list")
    return found


def _print(v: dict[str, Any]) -> None:
    state = "paused" if v["paused"] else f"next tick {v['next_tick']}"
    what = f"flow {v['flow']}" + (
        f" (deployment, tag {v['deployment_tag'] or 'default'})"
        if v["kind"] == "deployment"
        else f" (queue {v['queue']})"
    )
    print(f"schedule   {v['name']}")
    print(f"runs       {what}")
    print(f"cron       {v['cron']} ({v['timezone']}), catchup {v['catchup']}")
    print(f"state      {state}")
    print(f"args       {v['args']}")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Schedule name (letters, digits, '_', '.', '-')."),
    flow: str | None = typer.Option(
        None, "--flow", help="The flow: `pkg.module:flow` or `path/to/script.py:flow`."
    ),
    deployment: str | None = typer.Option(
        None, "--deployment", help="A deployed flow's name: each tick invokes it."
    ),
    tag: str | None = typer.Option(
        None, "--tag", help="With --deployment: the tag that picks the version (default)."
    ),
    cron: str = typer.Option(
        ..., "--cron", help="5 fields ('0 * * * *': hourly), or 6 with seconds last."
    ),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA time zone the cron reads in."),
    args: str | None = typer.Option(
        None, "--args", help='Flow arguments as JSON: \'{"topic": "kites"}\' or \'["kites"]\'.'
    ),
    catchup: str = typer.Option(
        "skip",
        "--catchup",
        help="Ticks missed while nothing fired: skip (run a tick only on time), all (run "
        "each), latest (run the newest one).",
    ),
    queue: str = typer.Option(
        "default", "--queue", help="With --flow: the queue its executions wait in for workers."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Create a schedule. The flow is imported here to check it and its arguments; each
    tick queues an execution for `kitaru worker --flows ...` (or invokes the deployment).

    Examples:

    - `kitaru schedules create hourly --flow reports:daily --cron '0 * * * *' --args '{"team": "a"}'`
    - `kitaru schedules create nightly --deployment daily --cron '30 2 * * *' --timezone Europe/Berlin`
    """
    from kitaru import _schedules
    from kitaru._errors import InvalidInputError, KitaruUsageError

    if (flow is None) == (deployment is None):
        raise KitaruUsageError("give --flow module:flow or --deployment NAME (one of them)")
    journal = _journal()
    if flow is not None:
        record = _schedules.for_flow(
            journal, name, flow, cron=cron, timezone=timezone, args=args, catchup=catchup,
            queue=queue,
        )  # fmt: skip
    else:
        assert deployment is not None
        record = _schedules.for_deployment(
            journal, name, deployment, cron=cron, timezone=timezone, args=args,
            catchup=catchup, tag=tag,
        )  # fmt: skip
    if not journal.put_schedule(record):
        raise InvalidInputError(
            f"a schedule named {name!r} exists; delete it first (kitaru schedules delete "
            f"{name}) or choose another name"
        )
    shown = view(_get(journal, name))
    if as_json:
        emit_json(shown)
    else:
        print(f"schedule {name} created; next tick {shown['next_tick']}")


@app.command("list")
def list_(as_json: bool = JSON_OPT) -> None:
    """Every schedule with its next tick.

    Example: `kitaru schedules list --json`
    """
    views = [view(s) for s in _journal().list_schedules()]
    if as_json:
        emit_json(views)
        return
    table(
        ["SCHEDULE", "FLOW", "CRON", "TIMEZONE", "CATCHUP", "NEXT TICK"],
        [
            [
                v["name"],
                v["flow"],
                v["cron"],
                v["timezone"],
                v["catchup"],
                "paused" if v["paused"] else v["next_tick"],
            ]
            for v in views
        ],
    )


@app.command("show")
def show(name: str = typer.Argument(...), as_json: bool = JSON_OPT) -> None:
    """One schedule.

    Example: `kitaru schedules show hourly`
    """
    v = view(_get(_journal(), name))
    if as_json:
        emit_json(v)
    else:
        _print(v)


def _pause(name: str, paused: bool, as_json: bool) -> None:
    from kitaru import _schedules

    journal = _journal()
    found = _get(journal, name)
    now = time.time()
    next_tick = None if paused else _schedules.resume_tick(found, now)
    journal.pause_schedule(name, paused=paused, next_tick=next_tick, now=now)
    v = view(_get(journal, name))
    if as_json:
        emit_json(v)
    else:
        print(
            f"schedule {name} " + ("paused" if paused else f"resumed; next tick {v['next_tick']}")
        )


@app.command("pause")
def pause(name: str = typer.Argument(...), as_json: bool = JSON_OPT) -> None:
    """Stop firing a schedule until it is resumed.

    Example: `kitaru schedules pause hourly`
    """
    _pause(name, True, as_json)


@app.command("resume")
def resume(name: str = typer.Argument(...), as_json: bool = JSON_OPT) -> None:
    """Fire a paused schedule again from its next tick after now (missed ticks are not owed).

    Example: `kitaru schedules resume hourly`
    """
    _pause(name, False, as_json)


@app.command("delete")
def delete(name: str = typer.Argument(...), as_json: bool = JSON_OPT) -> None:
    """Delete a schedule and its history (executions it started stay).

    Example: `kitaru schedules delete hourly`
    """
    journal = _journal()
    _get(journal, name)
    deleted = journal.delete_schedule(name)
    if as_json:
        emit_json({"name": name, "deleted": deleted})
    else:
        print(f"schedule {name} deleted")


@app.command("history")
def history(
    name: str = typer.Argument(...),
    limit: int = typer.Option(
        50, "--limit", min=0, max=LIMIT_MAX, help="At most this many ticks, newest first."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """The ticks a schedule fired, newest first: each with its execution and that
    execution's status now, or why it failed or was skipped.

    Example: `kitaru schedules history hourly --json`
    """
    journal = _journal()
    _get(journal, name)
    runs = [run_view(r) for r in journal.schedule_runs(name, limit=limit)]
    if as_json:
        emit_json(runs)
        return
    table(
        ["TICK", "STATUS", "EXECUTION", "NOW", "NOTE"],
        [
            [
                r["tick"],
                r["status"],
                r["exec_id"] or "-",
                r["execution_status"] or "-",
                r["error"] or "",
            ]
            for r in runs
        ],
    )
