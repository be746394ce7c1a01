"""Waits: the pending ones, signed webhook URLs, and the webhook that answers one.

A webhook URL carries no API token: its HMAC signature (under the server's secret)
covers the execution, the wait key and the expiry, so it answers exactly that wait,
once, until it expires.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from kitaru import _control, _views
from kitaru._errors import InvalidInputError
from kitaru.server import _actions, _webhooks
from kitaru.server._guard import WEBHOOK_BYTES, read_body
from kitaru.server._wire import Id
from kitaru.server.routes._deps import OfExecution, Reader, RunsExecution, State, Writer

router = APIRouter(prefix="/api/v1", tags=["waits"])

MAX_WEBHOOK_SECONDS = 30 * 24 * 3600


class WebhookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_in: Annotated[
        float, Field(gt=0, le=MAX_WEBHOOK_SECONDS, description="Seconds the URL stays valid.")
    ] = 24 * 3600


class AnswerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    value: Any = Field(description="The answer as JSON, checked against the wait's schema.")
    artifact_id: Id | None = Field(
        None, description="The id to store the answer under (default: a new one)."
    )
    timed_out: bool = Field(
        False,
        description="The flow took the wait's default after its timeout (the value must be "
        "that default).",
    )


@router.post(
    "/executions/{exec_id}/waits/{key}/answer",
    summary="Store the answer to a pending wait (JSON, checked against its schema); the "
    "execution is not continued (POST .../input does both)",
)
def answer(
    exec_id: str, key: str, body: AnswerRequest, state: State, caller: RunsExecution
) -> dict[str, Any]:
    record = _actions.answer(
        state.journal,
        exec_id,
        key,
        body.value,
        resume=False,
        timed_out=body.timed_out,
        artifact_id=body.artifact_id,
    )
    wait = _control.find_wait(state.journal, exec_id, key)
    return {"exec_id": record.exec_id, "wait": wait.key, "value_artifact": wait.value_artifact}


@router.get("/waits", summary="Pending waits across executions, oldest first")
def pending(state: State, caller: Reader) -> list[dict[str, Any]]:
    now = time.time()
    return [_views.wait_view(w, now) for w in state.journal.pending_waits()]


@router.get("/executions/{exec_id}/waits", summary="The waits of an execution")
def waits(exec_id: str, state: State, caller: OfExecution) -> list[dict[str, Any]]:
    _control.get_execution(state.journal, exec_id)
    now = time.time()
    return [_views.wait_view(w, now) for w in state.journal.waits(exec_id)]


@router.post(
    "/executions/{exec_id}/waits/{key}/webhook",
    summary="A signed URL that answers this wait without a token, until it expires",
)
def webhook_url(
    exec_id: str,
    key: str,
    request: Request,
    state: State,
    caller: Writer,
    body: WebhookRequest | None = None,
) -> dict[str, Any]:
    wait = _control.find_wait(state.journal, exec_id, key)
    if wait.status != "pending":
        raise InvalidInputError(f"wait {wait.key!r} of execution {exec_id} is already answered")
    base = state.config.public_url or str(request.base_url)
    url, expires = _webhooks.url(
        base, state.secret, exec_id, wait.key, (body or WebhookRequest()).expires_in
    )
    return {"url": url, "exec_id": exec_id, "wait": wait.key, "expires_at": _views.iso(expires)}


@router.post(
    "/hooks/waits/{exec_id}/{key}",
    status_code=202,
    summary="Answer a wait through a signed webhook URL (no token; the body is the JSON value)",
    tags=["webhooks"],
)
async def answer_by_webhook(
    exec_id: str, key: str, expires: int, sig: str, request: Request, state: State
) -> dict[str, Any]:
    # (The guard checked the signature before reading the body; this keeps the route
    # correct on its own.)
    if not _webhooks.check(state.secret, exec_id, key, expires, sig):
        raise HTTPException(401, "webhook signature invalid or expired")
    raw = await read_body(request, WEBHOOK_BYTES)
    from starlette.concurrency import run_in_threadpool

    def answer() -> Any:
        try:
            value = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInputError(f"the body is not valid JSON: {exc}") from None
        return _actions.answer(
            state.journal, exec_id, key, value, server_url=state.config.public_url
        )

    record = await run_in_threadpool(answer)
    return {"exec_id": record.exec_id, "wait": key, "status": "answered"}
