"""Schedules: start a flow, or a deployment, on a cron expression.

A schedule, in the order things happen:

1. `kitaru schedules create` (where the flow's code lives) imports the flow once, to
   check that it exists and that the arguments bind to it as JSON, and records what a
   tick starts: the flow's references and stack (as `flow.submit` would record them), or
   a deployment's name and tag. Bad cron, time zone, JSON or flow: an error, nothing
   stored. The first tick is the first one after now.
2. Schedulers find schedules whose next tick has passed: every server (a background
   thread, kitaru/server/_scheduler.py) and every `kitaru worker` (between claims).
   No scheduler imports flow code: a tick of a flow schedule is a `queued` execution
   that a worker of its queue runs, exactly like `flow.submit`.
3. `catchup` decides which of the passed ticks start an execution: `all` (each one,
   oldest first, up to MAX_PER_PASS per pass), `latest` (the newest one, however late)
   or `skip` (the newest one if it is at most GRACE seconds late, none otherwise).
   Ticks not started are recorded as one `skipped` row in the history.
4. Firing is one journal transaction (kitaru/journal/_schedules.py): the next tick moves
   by compare-and-set, a (schedule, tick) row is inserted under its primary key, and the
   executions are inserted. Two schedulers that read the same next tick start it once.
   A deployment is invoked after its tick is claimed: its run is `starting` until the
   invocation says how it went (`started` or `failed`). The invocation's idempotency key
   is `schedule:<name>:<tick>`, so one tick starts at most one execution of it.
5. A scheduler that dies between the claim and the end of the invocation leaves the run
   `starting`. A run `starting` for longer than STALLED seconds is taken over by the next
   pass of any scheduler (compare-and-set, so by one) and invoked again with the same
   key: the execution the dead scheduler started is found and recorded, or, if it never
   got that far, the tick's execution starts now, once.
6. Each execution carries `{"schedule": {"name", "tick"}}` in its metadata, and
   `kitaru schedules history NAME` lists each tick with its execution and that
   execution's status now.

Ticks are computed by croniter in the schedule's time zone, each strictly after the one
before: at a DST change a wall-clock time that happens twice starts once, and one that
never happens starts at the next existing time (kitaru/_schedule_checks.py, with the
checks a schedule passes before it is stored).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kitaru._errors import InvalidInputError, KitaruError, NotFoundError
from kitaru._ids import new_id
from kitaru._schedule_checks import (
    CATCHUP,
    check_catchup,
    check_cron,
    check_name,
    check_timezone,
    next_after,
    parse_args,
)
from kitaru.journal import ExecutionRecord, Journal
from kitaru.journal._schedules import ScheduleRecord, ScheduleRun

__all__ = [
    "CATCHUP",
    "GRACE",
    "MAX_PER_PASS",
    "STALLED",
    "check_catchup",
    "check_cron",
    "check_name",
    "check_timezone",
    "fire_due",
    "for_deployment",
    "for_flow",
    "next_after",
    "parse_args",
    "plan",
    "resume_tick",
]

log = logging.getLogger("kitaru.schedules")
GRACE = 60.0  # seconds a tick may be late and still start under catchup=skip
MAX_PER_PASS = 100  # ticks one schedule starts per pass under catchup=all
# Seconds a deployment's tick may stay `starting` before another scheduler takes it over:
# far longer than an invocation takes (an orchestrator's submit), so a live but slow
# scheduler is left alone; its key makes even a double invocation start one execution.
STALLED = 300.0


# -- creating ----------------------------------------------------------------------------
def for_flow(
    journal: Journal,
    name: str,
    spec: str,
    *,
    cron: str,
    timezone: str = "UTC",
    args: str | None = None,
    catchup: str = "skip",
    queue: str = "default",
    now: float | None = None,
) -> ScheduleRecord:
    """A schedule of the flow `spec` (`module:flow`, or a script path), checked by importing
    it here; stored by the caller."""
    from kitaru import _config, _execute, _flow_inputs, _queue, _serialize
    from kitaru.stacks import _resolve

    record = _base(name, cron, timezone, args, catchup, now)
    _queue.check_name(queue)
    try:
        flows = _queue.load_flows([spec])
    except KitaruError as exc:
        raise InvalidInputError(str(exc).replace("--flows ", "--flow ", 1)) from None
    except Exception as exc:  # the module itself failed to import
        raise InvalidInputError(f"--flow {spec}: importing it failed: {exc}") from None
    if len(flows) != 1:
        raise InvalidInputError(
            f"--flow {spec} names {len(flows)} flows ({', '.join(sorted(flows))}); name one: "
            f"{spec.partition(':')[0]}:<flow>"
        )
    [flow] = flows.values()
    stack = _resolve.resolve(journal, flow.stack)
    if not _resolve.runs_in_process(stack):
        raise InvalidInputError(
            f"flow {flow.name!r} runs on stack {stack.name!r} ({stack.orchestrator}); a flow "
            "schedule queues executions for `kitaru worker`, on a stack that runs flows where "
            "they start: schedule a deployment (--deployment) instead"
        )
    try:
        inputs = _flow_inputs.bind_inputs(
            flow.fn, tuple(record.args["args"]), record.args["kwargs"]
        )
    except (TypeError, KitaruError) as exc:
        raise InvalidInputError(f"--args do not fit flow {flow.name!r}: {exc}") from None
    for key, value in inputs.items():
        _serialize.encode(value, what=f"flow input {key!r}")  # JSON, or a clear error
    shape = _execute.new_record(
        flow, stack=stack.name, artifact_store="", now=record.created_at, owner=None
    )
    record.flow = flow.name
    record.args["inputs"] = inputs
    record.target = {
        "kind": "flow",
        "flow_ref": shape.flow_ref,
        "flow_file": shape.flow_file,
        "import_path": shape.import_path,
        "python": shape.python,
        "argv": shape.argv,
        "stack": stack.name,
        "artifact_store": stack.artifact_store or _config.artifact_store_uri(),
        "queue": queue,
    }
    return record


def for_deployment(
    journal: Journal,
    name: str,
    deployment: str,
    *,
    cron: str,
    timezone: str = "UTC",
    args: str | None = None,
    catchup: str = "skip",
    tag: str | None = None,
    now: float | None = None,
) -> ScheduleRecord:
    """A schedule invoking the deployed flow `deployment` (the version `tag` picks)."""
    from kitaru.deployments import _invoke

    record = _base(name, cron, timezone, args, catchup, now)
    live = [d for d in journal.list_deployments(deployment) if d.deleted_at is None]
    if not live:
        raise NotFoundError(
            f"no deployment of flow {deployment!r}; deploy it first (flow.deploy()), "
            "see: kitaru deployments list"
        )
    _invoke.bind(live[-1], record.args["args"], record.args["kwargs"])
    record.flow = deployment
    record.target = {"kind": "deployment", "tag": tag}
    return record


def _base(
    name: str, cron: str, tz: str, args: str | None, catchup: str, now: float | None
) -> ScheduleRecord:
    now = time.time() if now is None else now
    check_name(name)
    check_cron(cron)
    check_timezone(tz)
    check_catchup(catchup)
    return ScheduleRecord(
        name=name, flow="", target={}, cron=cron, timezone=tz, args=parse_args(args),
        catchup=catchup, next_tick=next_after(cron, tz, now), created_at=now, updated_at=now,
    )  # fmt: skip


def resume_tick(s: ScheduleRecord, now: float) -> float:
    """The next tick of a schedule resumed at `now`: ticks missed while it was paused
    are not owed, whatever its catchup."""
    return next_after(s.cron, s.timezone, now)


# -- firing ------------------------------------------------------------------------------
def plan(s: ScheduleRecord, now: float) -> tuple[list[float], list[float], float]:
    """(ticks to start, ticks skipped, the next tick after them) for a due schedule."""
    due: list[float] = []
    tick = s.next_tick
    limit = MAX_PER_PASS if s.catchup == "all" else 10_000
    while tick <= now and len(due) < limit:
        due.append(tick)
        tick = next_after(s.cron, s.timezone, tick)
    if s.catchup == "all":
        return due, [], tick
    if tick <= now:  # more ticks passed than were counted: jump past now
        tick = next_after(s.cron, s.timezone, now)
    newest = due[-1]
    if s.catchup == "latest" or now - newest <= GRACE:
        return [newest], due[:-1], tick
    return [], due, tick


def fire_due(
    journal: Journal,
    *,
    by: str,
    now: float | None = None,
    server_url: str | None = None,
    refuse_local: bool = False,
) -> list[ScheduleRun]:
    """Start what every due schedule owes; the runs this scheduler started (ticks another
    scheduler claimed first are not among them). One schedule's trouble is recorded in
    its history and logged, never raised."""
    now = time.time() if now is None else now
    started: list[ScheduleRun] = []
    for s in journal.due_schedules(now):
        try:
            started += _fire(journal, s, now, by, server_url, refuse_local)
        except Exception:
            log.exception("schedule %r could not fire; trying again at the next pass", s.name)
    for run in journal.stalled_schedule_runs(now - STALLED):
        try:
            started += _recover(journal, run, now, by, server_url, refuse_local)
        except Exception:
            log.exception("schedule %r: tick left starting not recovered yet", run.schedule)
    return started


def _recover(
    journal: Journal,
    run: ScheduleRun,
    now: float,
    by: str,
    server_url: str | None,
    refuse_local: bool,
) -> list[ScheduleRun]:
    """Finish a tick whose scheduler died after claiming it (step 5 above)."""
    if not journal.retake_schedule_run(
        run.schedule, run.tick, taken_at=run.created_at, now=now, by=by
    ):
        return []  # another scheduler took it over first
    s = journal.get_schedule(run.schedule)
    if s is None:  # deleted since (its runs go with it)
        return []
    log.warning(
        "schedule %r: tick %s was left starting by %s; invoking it again (its key finds the "
        "execution if one was started)", s.name, _iso(run.tick), run.by,
    )  # fmt: skip
    run.created_at, run.by = now, by
    _invoke_tick(journal, s, run, server_url, refuse_local)
    return [run] if run.status == "started" else []


def _fire(
    journal: Journal,
    s: ScheduleRecord,
    now: float,
    by: str,
    server_url: str | None,
    refuse_local: bool,
) -> list[ScheduleRun]:
    ticks, skipped, next_tick = plan(s, now)
    runs: list[ScheduleRun] = []
    executions: list[tuple[ExecutionRecord, list[Any]]] = []
    if skipped:
        runs.append(
            ScheduleRun(
                s.name, skipped[0], "skipped", now, by=by,
                error=f"{len(skipped)} tick(s) from {_iso(skipped[0])} to {_iso(skipped[-1])} "
                f"skipped (catchup={s.catchup})",
            )
        )  # fmt: skip
    deployment = s.target.get("kind") == "deployment"
    for tick in ticks:
        run = ScheduleRun(s.name, tick, "starting" if deployment else "started", now, by=by)
        if not deployment:
            try:
                executions.append(_execution(s, tick, now))
            except Exception as exc:
                run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
                run.exec_id = None
            else:
                run.exec_id = executions[-1][0].exec_id
        runs.append(run)
    if not journal.fire_schedule(
        s.name, expected_next=s.next_tick, next_tick=next_tick, runs=runs, executions=executions
    ):
        return []  # another scheduler took these ticks
    if deployment:
        for run in runs:
            if run.status == "starting":
                _invoke_tick(journal, s, run, server_url, refuse_local)
    return [r for r in runs if r.status == "started"]


def _execution(s: ScheduleRecord, tick: float, now: float) -> tuple[ExecutionRecord, list[Any]]:
    """The queued execution of one tick of a flow schedule, and its inputs (JSON)."""
    from kitaru import _config, _flow_inputs, _queue, _serialize
    from kitaru._artifact_io import INLINE_MAX
    from kitaru.artifacts import open_store

    t = s.target
    record = ExecutionRecord(
        exec_id=new_id("kx"),
        flow=s.flow,
        status="queued",
        created_at=now,
        updated_at=now,
        flow_ref=t["flow_ref"],
        flow_file=t.get("flow_file"),
        import_path=t.get("import_path"),
        python=t.get("python"),
        stack=t["stack"],
        orchestrator="local",
        artifact_store=t["artifact_store"],
        runs=0,
        argv=list(t.get("argv") or []),
        metadata={
            **_queue.ready_note(t["queue"], now),
            "schedule": {"name": s.name, "tick": _iso(tick)},
        },
        queue=t["queue"],
        priority=0,
    )
    inputs = []
    for key, value in dict(s.args.get("inputs") or {}).items():
        encoded = _serialize.encode(value, what=f"flow input {key!r}")
        # Small inputs sit inline in the journal: only a large one needs the store.
        large = len(encoded.data) > INLINE_MAX
        store = open_store(t["artifact_store"] if large else _config.artifact_store_uri())
        inputs.append(_flow_inputs.input_artifact(record.exec_id, store, key, encoded))
    return record, inputs


def _invoke_tick(
    journal: Journal,
    s: ScheduleRecord,
    run: ScheduleRun,
    server_url: str | None,
    refuse_local: bool,
) -> None:
    from kitaru.deployments import _invoke

    try:
        handle = _invoke.invoke(
            s.flow,
            args=s.args.get("args") or [],
            kwargs=s.args.get("kwargs") or {},
            tag=s.target.get("tag"),
            idempotency_key=f"schedule:{s.name}:{_iso(run.tick)}",
            journal=journal,
            server_url=server_url,
            refuse_local=refuse_local,
        )
    except Exception as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    else:
        run.status, run.exec_id = "started", handle.exec_id
        journal.set_metadata(handle.exec_id, {"schedule": {"name": s.name, "tick": _iso(run.tick)}})
    journal.end_schedule_run(
        s.name, run.tick, status=run.status, exec_id=run.exec_id, error=run.error
    )


def _iso(ts: float) -> str:
    from kitaru._views import iso

    return iso(ts) or str(ts)
