"""The runner API's request bodies (kitaru/server/routes/_runner.py): strict pydantic
models built from the journal's records, and the checks every route makes on them
before anything is stored."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kitaru._errors import InvalidInputError
from kitaru.journal import ArtifactRecord, CallRecord, LogRecord
from kitaru.journal._events import BATCH_MAX
from kitaru.server._state import ServerState
from kitaru.server._wire import (
    Artifact,
    Call,
    Event,
    ExecutionStatus,
    Log,
    Number,
    Text,
    Wait,
    to_record,
)

_STRICT = ConfigDict(extra="forbid", strict=True)
Owner = Annotated[str, Field(min_length=1, max_length=300)]


class LeaseRequest(BaseModel):
    model_config = _STRICT
    owner: Owner = Field(description="The caller's new owner token (host:pid:start:nonce).")
    expected_owner: Owner | None = Field(
        description="The owner the caller saw (as the server showed it), or null."
    )
    statuses: Annotated[list[ExecutionStatus], Field(min_length=1, max_length=7)]
    now: Number
    lease_until: Number


class HeartbeatRequest(BaseModel):
    model_config = _STRICT
    owner: Owner
    now: Number
    lease_until: Number


class CommitRequest(BaseModel):
    model_config = _STRICT
    owner: Owner
    call: Call
    output: Artifact | None = None
    logs: Annotated[list[Log], Field(max_length=10_000)] = []


class ArtifactRequest(BaseModel):
    model_config = _STRICT
    artifact: Artifact


class LogsRequest(BaseModel):
    model_config = _STRICT
    logs: Annotated[list[Log], Field(max_length=10_000)]


class EventsRequest(BaseModel):
    model_config = _STRICT
    owner: Owner
    events: Annotated[list[Event], Field(min_length=1, max_length=BATCH_MAX)]


class MetadataRequest(BaseModel):
    model_config = _STRICT
    metadata: Annotated[dict[Text, Any], Field(max_length=1000)]


class WaitRequest(BaseModel):
    model_config = _STRICT
    owner: Owner
    wait: Wait


class FinishRequest(BaseModel):
    model_config = _STRICT
    owner: Owner
    status: Literal["waiting", "completed", "failed", "cancelled"]
    now: Number
    error: Annotated[str, Field(max_length=256 * 1024)] | None = None
    result: Artifact | None = None


def commit_parts(
    exec_id: str, body: CommitRequest
) -> tuple[CallRecord, ArtifactRecord | None, list[LogRecord]]:
    """A commit's records, checked: all of `exec_id`, no pickle from outside a call."""
    call: CallRecord = to_record(CallRecord, body.call)
    output = to_record(ArtifactRecord, body.output) if body.output is not None else None
    logs = [to_record(LogRecord, g) for g in body.logs]
    _mine(exec_id, call, output, *logs)
    _no_pickle_from(output, "override", "input", "wait")
    if output is not None and call.output_artifact not in (None, output.artifact_id):
        raise InvalidInputError("the call names another artifact than the output sent with it")
    return call, output, logs


def _mine(exec_id: str, *records: Any) -> None:
    """Every record in a body belongs to the execution in the path."""
    for record in records:
        if record is not None and record.exec_id != exec_id:
            raise InvalidInputError(
                f"a record of execution {record.exec_id} was sent for execution {exec_id}; "
                "send each execution's records to its own routes"
            )


def _no_pickle_from(artifact: ArtifactRecord | None, *producers: str) -> None:
    # Values that come from outside a checkpoint (an override, an input, an answer) are
    # JSON: a pickle there could only be someone else's bytes.
    if artifact is not None and artifact.serializer == "pickle" and artifact.producer in producers:
        raise InvalidInputError(
            f"a {artifact.producer} artifact cannot be pickled; it is stored as JSON"
        )


M = TypeVar("M", bound=BaseModel)


def _doc(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that validates `model` itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        },
        "security": [{"HTTPBearer": []}],
    }


async def _parse(request: Request, model: type[M]) -> M:
    """The body as `model`, parsed and validated in one pass (pydantic's JSON parser)."""
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.kitaru
    return state
