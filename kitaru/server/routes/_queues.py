"""Queues and workers through the server: what `kitaru worker` needs when all it has is
KITARU_SERVER_URL and a token, and what `kitaru queues` shows.

A worker, in this order:

1. `PUT /api/v1/records/workers/{name}`: report itself starting (write).
2. `POST /api/v1/runner/claim`: take the next ready execution of its flows waiting in a
   queue, if the queue's limits allow one more (the journal's `claim`,
   kitaru/journal/_queues.py). Write tokens only: a run token is bound to the one
   execution it was minted for. The claim is stamped and the lease granted by the
   server's clock (the rate limit counts claims by their time), for at most
   MAX_LEASE_SECONDS. The caller sends a new owner token of its own, as with `/lease`,
   and the answer shows it masked like every answer (kitaru/server/_owners.py): the
   worker drives the execution with the token it sent, through the runner API like any
   run (heartbeat, calls, finish).
3. `POST /api/v1/records/workers/{name}/seen`: how many it runs; once more when it stops.

Reads need a read token: `GET /api/v1/records/queue-counts` (by the server's clock),
`/queues`, `/queues/{name}`, `/workers`. A queue's limits are settings:
`PUT` and `DELETE /api/v1/records/queues/{name}` need an admin token.
"""

from __future__ import annotations

import dataclasses
import re
import time
import typing
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, create_model

from kitaru._errors import InvalidInputError
from kitaru.journal import QueueRecord, WorkerRecord
from kitaru.remote._codec import to_wire
from kitaru.server import _owners
from kitaru.server._wire import Number, model_for, to_record
from kitaru.server.routes._deps import Admin, Reader, State, Writer
from kitaru.server.routes._records import _json
from kitaru.server.routes._runner import MAX_LEASE_SECONDS
from kitaru.server.routes._runner_bodies import Owner

router = APIRouter(prefix="/api/v1", tags=["queues"])

_STRICT = ConfigDict(extra="forbid", strict=True)
# As `kitaru queues` and `flow.submit(queue=...)` check them (kitaru/_queue.py).
QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _queue_name(name: str) -> str:
    if not QUEUE_NAME.fullmatch(name):
        raise ValueError(
            "a queue name is 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit (for example: default, approvals, gpu-batch)"
        )
    return name


QueueName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_queue_name)]
FlowName = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
WorkerName = Annotated[str, StringConstraints(min_length=1, max_length=300)]
Limit = Annotated[int, Field(ge=1, le=1_000_000)]
Size = Annotated[int, Field(ge=0, le=1_000_000)]
MAX_FLOWS = 1000


class ClaimRequest(BaseModel):
    model_config = _STRICT
    queue: QueueName
    flows: Annotated[list[FlowName], Field(min_length=1, max_length=MAX_FLOWS)]
    owner: Owner = Field(description="The caller's new owner token (host:pid:start:nonce).")
    worker: WorkerName
    lease_seconds: Annotated[float, Field(gt=0, le=MAX_LEASE_SECONDS, allow_inf_nan=False)]


class SeenRequest(BaseModel):
    model_config = _STRICT
    running: Size
    now: Number
    stopped: bool = False


def _tightened(cls: type, bounds: dict[str, Any]) -> type[BaseModel]:
    """The record's request model (kitaru/server/_wire.py) with tighter bounds on some
    fields; the others, and a field added later, travel as `model_for` types them."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    members: dict[str, Any] = {
        name: (tp, Field(... if defaults[name] is dataclasses.MISSING else defaults[name]))
        for name, tp in bounds.items()
    }
    return create_model(f"{cls.__name__}Body", __base__=model_for(cls), **members)


if typing.TYPE_CHECKING:
    QueueBody: typing.TypeAlias = BaseModel
    WorkerBody: typing.TypeAlias = BaseModel
else:
    QueueBody = _tightened(
        QueueRecord,
        {"name": QueueName, "concurrency": Limit | None, "rate_per_minute": Limit | None},
    )
    WorkerBody = _tightened(
        WorkerRecord,
        {
            "name": WorkerName,
            "host": Annotated[str, StringConstraints(max_length=300)],
            "pid": Annotated[int, Field(ge=0, le=2**31 - 1)],
            "queues": Annotated[list[QueueName], Field(max_length=1000)],
            "flows": Annotated[list[FlowName], Field(max_length=MAX_FLOWS)],
            "concurrency": Limit,
            "running": Size,
        },
    )

QueuePath = Annotated[QueueName, Path()]
WorkerPath = Annotated[str, Path(min_length=1, max_length=300)]


def _named(kind: str, name: str, path: str) -> None:
    if name != path:
        raise InvalidInputError(f"the {kind} is named {name!r}, not {path!r} as in the path")


# -- claims ------------------------------------------------------------------------------
@router.post("/runner/claim", summary="Take the next ready execution of some flows from a queue")
def claim(body: ClaimRequest, state: State, caller: Writer) -> JSONResponse:
    now = time.time()
    found = state.journal.claim(
        queue=body.queue,
        flows=body.flows,
        owner=body.owner,
        worker=body.worker,
        now=now,
        lease_until=now + body.lease_seconds,
    )
    shown = None if found is None else to_wire(_owners.masked(state.secret, found))
    return JSONResponse({"execution": shown})


@router.get("/records/queue-counts", summary="By queue: waiting, running, claimed last minute")
def queue_counts(state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.queue_counts(time.time()))


# -- queue limits ------------------------------------------------------------------------
@router.get("/records/queues", summary="Queues with limits, by name")
def list_queues(state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.list_queues())


@router.get("/records/queues/{name}", summary="One queue's limits")
def get_queue(name: QueuePath, state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.get_queue(name))


@router.put("/records/queues/{name}", summary="Set a queue's limits (its creation time stays)")
def put_queue(name: QueuePath, body: QueueBody, state: State, caller: Admin) -> dict[str, bool]:
    queue: QueueRecord = to_record(QueueRecord, body)
    _named("queue", queue.name, name)
    state.journal.put_queue(queue)
    return {"stored": True}


@router.delete("/records/queues/{name}", summary="Remove a queue's limits")
def delete_queue(name: QueuePath, state: State, caller: Admin) -> dict[str, bool]:
    return {"deleted": state.journal.delete_queue(name)}


# -- workers -----------------------------------------------------------------------------
@router.get("/records/workers", summary="Workers as they last reported, oldest first")
def list_workers(state: State, caller: Reader) -> JSONResponse:
    return _json(state.journal.list_workers())


@router.put("/records/workers/{name}", summary="Record a worker starting")
def put_worker(name: WorkerPath, body: WorkerBody, state: State, caller: Writer) -> dict[str, bool]:
    worker: WorkerRecord = to_record(WorkerRecord, body)
    _named("worker", worker.name, name)
    state.journal.put_worker(worker)
    return {"stored": True}


@router.post("/records/workers/{name}/seen", summary="A worker reports what it runs")
def worker_seen(
    name: WorkerPath, body: SeenRequest, state: State, caller: Writer
) -> dict[str, bool]:
    state.journal.worker_seen(name, running=body.running, now=body.now, stopped=body.stopped)
    return {"seen": True}
