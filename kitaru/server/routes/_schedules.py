"""Schedules through the server: what `kitaru schedules` does with KITARU_SERVER_URL set.

`kitaru schedules create` imports the flow where its code lives and sends the schedule
it built; the server checks the parts it can (name, cron, time zone, catchup, the shape
of the target and arguments), sets the next tick by its own clock, and fires it from its
own scheduler thread (kitaru/server/_scheduler.py). Reads need a read token; creating,
pausing and resuming a write token; deleting an admin token (deletion is an admin's).
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from kitaru import _schedules
from kitaru._errors import InvalidInputError, NotFoundError
from kitaru.journal._schedules import ScheduleRecord
from kitaru.server.routes._deps import Admin, Reader, State, Writer
from kitaru.server.routes._records import _json

router = APIRouter(prefix="/api/v1", tags=["schedules"])

_STRICT = ConfigDict(extra="ignore", strict=True)
NamePath = Annotated[str, Path(min_length=1, max_length=64)]


class ScheduleBody(BaseModel):
    model_config = _STRICT
    name: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    flow: Annotated[str, StringConstraints(min_length=1, max_length=1000)]
    target: dict[str, Any]
    cron: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    args: dict[str, Any]
    catchup: Literal["skip", "all", "latest"]
    paused: bool = False


_FLOW_TARGET = {"flow_ref", "stack", "artifact_store", "queue"}


def _check_target(body: ScheduleBody) -> None:
    kind = body.target.get("kind")
    if kind == "flow":
        missing = sorted(k for k in _FLOW_TARGET if not isinstance(body.target.get(k), str))
        if missing:
            raise InvalidInputError(f"a flow schedule's target needs {', '.join(missing)}")
        if not isinstance(body.args.get("inputs", {}), dict):
            raise InvalidInputError("args.inputs must be an object of flow inputs")
    elif kind != "deployment":
        raise InvalidInputError("target.kind must be 'flow' or 'deployment'")
    if not isinstance(body.args.get("args", []), list) or not isinstance(
        body.args.get("kwargs", {}), dict
    ):
        raise InvalidInputError("args must be {'args': [...], 'kwargs': {...}}")


@router.get("/schedules", summary="Schedules, by name")
def list_schedules(state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.list_schedules())


@router.post("/schedules", summary="Create a schedule (its first tick is the next one after now)")
def create_schedule(body: ScheduleBody, state: State, caller: Writer) -> JSONResponse:
    _schedules.check_name(body.name)
    _schedules.check_cron(body.cron)
    _schedules.check_timezone(body.timezone)
    _check_target(body)
    now = time.time()
    record = ScheduleRecord(
        name=body.name, flow=body.flow, target=body.target, cron=body.cron,
        timezone=body.timezone, args=body.args, catchup=body.catchup,
        next_tick=_schedules.next_after(body.cron, body.timezone, now), created_at=now,
        updated_at=now, paused=body.paused,
    )  # fmt: skip
    created = state.journal.put_schedule(record)
    return JSONResponse({"created": created}, status_code=200 if created else 409)


@router.get("/schedules/{name}", summary="One schedule")
def get_schedule(name: NamePath, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.get_schedule(name))


@router.get("/schedules/{name}/history", summary="Its ticks, newest first, with their executions")
def history(
    name: NamePath,
    state: State,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> JSONResponse:
    return _json(state.journal.schedule_runs(name, limit=limit))


@router.post("/schedules/{name}/{action}", summary="Pause or resume a schedule")
def pause(
    name: NamePath,
    action: Annotated[Literal["pause", "resume"], Path()],
    state: State,
    caller: Writer,
) -> dict[str, bool]:
    found = state.journal.get_schedule(name)
    if found is None:
        raise NotFoundError(f"no schedule named {name!r}; see: kitaru schedules list")
    now = time.time()
    next_tick = None if action == "pause" else _schedules.resume_tick(found, now)
    changed = state.journal.pause_schedule(
        name, paused=action == "pause", next_tick=next_tick, now=now
    )
    return {"changed": changed}


@router.delete("/schedules/{name}", summary="Delete a schedule and its history")
def delete_schedule(name: NamePath, state: State, caller: Admin) -> dict[str, bool]:
    return {"deleted": state.journal.delete_schedule(name)}
