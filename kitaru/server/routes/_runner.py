"""The runner API: what a running execution needs from the server, and nothing more.

A run (a flow in a developer's process, a container a stack started, a worker) uses it
in this order, every route under /api/v1/runner/executions/{exec_id}:

1. `POST /lease`: claim the execution (compare-and-swap on its owner and status); it is
   `running` and the caller's owner token holds it. A live lease is never taken over,
   a completed or cancelled execution is never claimed, and no lease runs longer than
   MAX_LEASE_SECONDS past the server's own clock, whatever the caller asks.
2. reads: its record, calls, waits and artifacts through GET /api/v1/records/... .
3. `POST /heartbeat`: extend the lease; the answer says whether a cancel was requested
   (`null`: the lease was lost, stop writing).
4. `POST /calls`: commit a finished call, completed or failed, with its output and its
   log lines, in one transaction. A call is recorded when it ends: a call that started
   and never committed simply runs again on the next run.
5. `POST /artifacts`, `POST /logs`, `POST /metadata`: `kitaru.save`, the flow's own
   output between calls, `kitaru.log` on the execution. `POST /events`: entries of the
   execution's live feed (`kitaru.emit`, calls starting and ending, output as printed),
   numbered by the journal, stored only while the owner token holds the lease.
6. `POST /waits`: record a wait the flow reached. Its answer arrives through
   `POST /api/v1/executions/{id}/waits/{key}/answer` (a timed-out wait's default too).
7. `POST /finish`: release the lease with the end status and the result; the answer
   carries the execution as it now is. A run token that finishes its execution
   (completed, failed, cancelled) is revoked there and then: it has nothing left to do.

Each body is a pydantic model built from the journal's record dataclasses
(kitaru/server/routes/_runner_bodies.py, from kitaru/server/_wire.py): bounded, strict,
unknown members refused (422). Every record in a body must belong to the execution in
the path, and a run token reaches only its own execution. Writes that change a running
execution need the caller's real owner token, which the server never shows anyone
(kitaru/server/_owners.py).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kitaru import _lease, _ready
from kitaru._errors import InvalidInputError, LeaseError, NotFoundError
from kitaru._tracing import TRACE_METADATA
from kitaru.journal import (
    TERMINAL_STATUSES,
    ArtifactRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    WaitRecord,
)
from kitaru.journal._events import DATA_MAX_BYTES
from kitaru.remote._codec import to_wire
from kitaru.server import _owners
from kitaru.server._tokens import Caller
from kitaru.server._wire import (
    to_record,
)
from kitaru.server.routes._deps import execution_runner_of
from kitaru.server.routes._runner_bodies import (
    ArtifactRequest,
    CommitRequest,
    EventsRequest,
    FinishRequest,
    HeartbeatRequest,
    LeaseRequest,
    LogsRequest,
    MetadataRequest,
    WaitRequest,
    _doc,
    _mine,
    _no_pickle_from,
    _parse,
    _state,
    commit_parts,
)

# One dependency, no sub-dependencies: these routes are called once per checkpoint.
router = APIRouter(
    prefix="/api/v1/runner/executions/{exec_id}",
    tags=["runner"],
    dependencies=[Depends(execution_runner_of)],
)
# What a run never claims, whatever it asks: an execution that completed or was
# cancelled (a failed one is resumed by claiming it).
UNCLAIMABLE = frozenset({"completed", "cancelled"})
# The longest lease the server grants, from its own clock: a lease is renewed every
# few seconds, and one set far in the future would hold an execution for good.
MAX_LEASE_SECONDS = 3600.0


def _capped(lease_until: float) -> float:
    return min(lease_until, time.time() + MAX_LEASE_SECONDS)


@router.post(
    "/lease",
    summary="Claim the execution: become its owner if nobody runs it",
    openapi_extra=_doc(LeaseRequest),
)
async def take_lease(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, LeaseRequest)
    state = _state(request)

    def take() -> bool:
        journal = state.journal
        statuses = [s for s in body.statuses if s not in UNCLAIMABLE]
        current = journal.get_execution(exec_id)
        if current is None or not statuses:
            return False
        expected = _owners.expected(state.secret, body.expected_owner, current.owner)
        if (
            current.status == "running"
            and expected is not None
            and expected == current.owner
            and _lease.owner_alive(current.owner, current.lease_until, time.time())
        ):
            raise LeaseError(
                f"execution {exec_id} is running and its lease is live; it can be resumed "
                "once its process has stopped or its lease has expired"
            )
        return journal.take_lease(
            exec_id,
            owner=body.owner,
            expected_owner=expected,
            statuses=statuses,
            now=body.now,
            lease_until=_capped(body.lease_until),
        )

    return JSONResponse({"taken": await run_in_threadpool(take)})


@router.post(
    "/heartbeat",
    summary="Extend the lease; says whether a cancel was requested",
    openapi_extra=_doc(HeartbeatRequest),
)
async def heartbeat(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, HeartbeatRequest)
    journal = _state(request).journal
    cancel = await run_in_threadpool(
        lambda: journal.heartbeat(
            exec_id, owner=body.owner, now=body.now, lease_until=_capped(body.lease_until)
        )
    )
    return JSONResponse({"cancel": cancel})


@router.post(
    "/calls",
    summary="Commit a finished call with its output and log lines",
    openapi_extra=_doc(CommitRequest),
)
async def commit_call(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, CommitRequest)
    call, output, logs = commit_parts(exec_id, body)
    committed = await _state(request).commits.commit(call, output, logs, body.owner)
    return JSONResponse({"committed": committed})


@router.post(
    "/artifacts",
    summary="Store an artifact of the execution (kitaru.save)",
    openapi_extra=_doc(ArtifactRequest),
)
async def put_artifact(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, ArtifactRequest)
    artifact: ArtifactRecord = to_record(ArtifactRecord, body.artifact)
    _mine(exec_id, artifact)
    _no_pickle_from(artifact, "override", "input", "wait")
    journal = _state(request).journal

    def put() -> None:
        if journal.get_execution(exec_id) is None:
            raise NotFoundError(f"execution {exec_id} not found")
        journal.put_artifact(artifact)

    await run_in_threadpool(put)
    return JSONResponse({"artifact_id": artifact.artifact_id})


@router.post(
    "/logs", summary="Append log lines printed outside a call", openapi_extra=_doc(LogsRequest)
)
async def append_logs(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, LogsRequest)
    logs = [to_record(LogRecord, g) for g in body.logs]
    _mine(exec_id, *logs)
    journal = _state(request).journal
    await run_in_threadpool(journal.append_logs, logs)
    return JSONResponse({"appended": len(logs)})


@router.post(
    "/events",
    summary="Append entries to the execution's live feed",
    openapi_extra=_doc(EventsRequest),
)
async def append_events(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, EventsRequest)
    events = [to_record(EventRecord, e) for e in body.events]
    _mine(exec_id, *events)
    for event in events:
        if event.data is not None and len(json.dumps(event.data).encode()) > DATA_MAX_BYTES:
            raise InvalidInputError(
                f"event {event.name!r} carries more than {DATA_MAX_BYTES} bytes of JSON; "
                "store large values as artifacts (kitaru.save) and emit their name"
            )
    journal = _state(request).journal
    appended = await run_in_threadpool(
        # A batch may arrive twice (its answer lost, the client sent it again): what the
        # first copy stored is left out, so the feed shows each entry once.
        lambda: journal.append_events(exec_id, events, owner=body.owner, again=True)
    )
    return JSONResponse({"appended": appended})


# Metadata Kitaru itself keeps on an execution: the image a server may resubmit, the
# deployment it runs, why it is ready. A flow's kitaru.log() cannot set them.
RESERVED_METADATA = frozenset({"image", "deployment", "ready", "server_url"})
# Why an execution is ready (kitaru/_ready.py) is written by whoever queued it for a
# runner: the server, or a worker that gave an execution back to its queue with a write
# token. It is taken from such a caller only while the execution is queued for a runner,
# so it says what holds; a run (which logs only while running) never sets it.
WORKER_METADATA = frozenset({"ready"})
# The execution's trace (kitaru/_tracing.py): set once, by its first traced run or
# submission, as a W3C traceparent; a trace id is no authority, but a flow's own log
# must not move an execution's later runs into another trace.
_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")


def _queued_for_runner(record: ExecutionRecord) -> bool:
    return record.status == "queued" and _ready.for_workers(record)


@router.post(
    "/metadata",
    summary="Merge metadata into the execution's (kitaru.log)",
    openapi_extra=_doc(MetadataRequest),
)
async def set_metadata(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, MetadataRequest)
    reserved = RESERVED_METADATA & set(body.metadata)
    if reserved - WORKER_METADATA:
        raise InvalidInputError(
            f"metadata {', '.join(sorted(reserved))} is kept by Kitaru itself; log it under "
            "another name"
        )
    journal = _state(request).journal
    caller: Caller = request.state.kitaru_caller

    def merge() -> None:
        current = journal.get_execution(exec_id)
        if current is None:
            raise NotFoundError(f"execution {exec_id} not found")
        if TRACE_METADATA in body.metadata:
            value = body.metadata[TRACE_METADATA]
            if not isinstance(value, str) or not _TRACEPARENT.fullmatch(value):
                raise InvalidInputError(f"metadata {TRACE_METADATA} must be a W3C traceparent")
            if current.metadata.get(TRACE_METADATA) not in (None, value):
                raise InvalidInputError(
                    f"execution {exec_id} already has its trace; {TRACE_METADATA} is set once"
                )
        if reserved and (caller.execution is not None or not _queued_for_runner(current)):
            raise InvalidInputError(
                f"metadata {', '.join(sorted(reserved))} is kept by Kitaru itself (set when "
                "an execution is queued for a runner); log it under another name"
            )
        journal.set_metadata(exec_id, dict(body.metadata))

    await run_in_threadpool(merge)
    return JSONResponse({"merged": True})


@router.post("/waits", summary="Record a wait the flow reached", openapi_extra=_doc(WaitRequest))
async def create_wait(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, WaitRequest)
    wait: WaitRecord = to_record(WaitRecord, body.wait)
    _mine(exec_id, wait)
    if wait.status != "pending" or wait.value_artifact is not None:
        raise InvalidInputError("a new wait is pending; its answer comes through the answer route")
    journal = _state(request).journal
    created = await run_in_threadpool(lambda: journal.create_wait(wait, owner=body.owner))
    return JSONResponse({"created": created})


@router.post(
    "/finish",
    summary="Release the lease with the end status and result",
    openapi_extra=_doc(FinishRequest),
)
async def finish(exec_id: str, request: Request) -> JSONResponse:
    body = await _parse(request, FinishRequest)
    result = to_record(ArtifactRecord, body.result) if body.result is not None else None
    _mine(exec_id, result)
    state = _state(request)
    caller: Caller = request.state.kitaru_caller

    def end() -> dict[str, Any]:
        done = state.journal.finish(
            exec_id,
            owner=body.owner,
            status=body.status,
            now=body.now,
            error=body.error,
            result=result,
        )
        if done and caller.execution is not None and body.status in TERMINAL_STATUSES:
            # The run is over: its token (which travelled in a job spec) dies with it.
            # The sweeper revokes the tokens of runs that never finished.
            state.revoke(caller.token_id)
        current = state.journal.get_execution(exec_id) if done else None
        if current is None:
            return {"finished": done}
        return {"finished": True, "execution": to_wire(_owners.masked(state.secret, current))}

    return JSONResponse(await run_in_threadpool(end))
