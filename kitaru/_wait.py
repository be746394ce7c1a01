"""`kitaru.wait()`: a durable pause for input from outside the process.

The first time a flow reaches a wait, the wait is recorded, the execution becomes
`waiting` and the flow unwinds: the process is free to exit. The input arrives
later (CLI, client, server); it is validated against the wait's schema and stored,
and the execution resumes from the top, where the completed checkpoints are read
back and this `wait()` returns the input.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from datetime import timedelta
from typing import Any, TypeVar, overload

from kitaru import _runtime, _serialize
from kitaru._artifact_io import read_bytes
from kitaru._errors import (
    ExecutionSuspended,
    InvalidInputError,
    KitaruUsageError,
    SerializationError,
    WaitTimeoutError,
)
from kitaru.journal import ArtifactRecord, WaitRecord

T = TypeVar("T")

_BUILTINS: dict[str, type] = {
    "bool": bool,
    "int": int,
    "float": float,
    "str": str,
    "dict": dict,
    "list": list,
}
_MISSING: Any = object()


def schema_of(schema: Any) -> dict[str, Any]:
    """The JSON description of a wait schema, stored with the wait."""
    if schema is None or schema is Any:
        return {"type": "any"}
    if (
        isinstance(schema, type)
        and schema.__name__ in _BUILTINS
        and schema.__module__ == "builtins"
    ):
        return {"type": schema.__name__}
    is_model = isinstance(schema, type) and hasattr(schema, "model_validate_json")
    if isinstance(schema, type) and (is_model or dataclasses.is_dataclass(schema)):
        from pydantic import TypeAdapter

        return {
            "type": "model",
            "type_ref": _serialize.type_ref(schema),
            "json_schema": TypeAdapter(schema).json_schema(),
        }
    raise KitaruUsageError(
        f"wait schema {schema!r} is not supported; use bool, int, float, str, dict, list, "
        "a pydantic model or a dataclass"
    )


def validate(schema: dict[str, Any], value: Any, *, model: Any = None) -> Any:
    """Check a JSON value against a stored schema; return the value to store.

    `model` is the schema's class when the caller could import it; without it a model
    schema is checked against its JSON schema's required fields only.
    """
    kind = schema.get("type")
    if kind == "any":
        return value
    if kind in _BUILTINS:
        expected = _BUILTINS[kind]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise InvalidInputError(
                f"expected {kind}, got {_json_type(value)} {json.dumps(value)} "
                f"({answer_hint(schema)})"
            )
        return value
    if kind == "model":
        if model is not None:
            from pydantic import TypeAdapter, ValidationError

            adapter = TypeAdapter(model)
            try:
                return adapter.dump_python(adapter.validate_python(value), mode="json")
            except ValidationError as exc:
                raise InvalidInputError(_validation_message(exc)) from None
        required = schema.get("json_schema", {}).get("required", [])
        if not isinstance(value, dict):
            raise InvalidInputError(f"expected an object, got {_json_type(value)}")
        missing = [f for f in required if f not in value]
        if missing:
            raise InvalidInputError(f"missing required field(s): {', '.join(missing)}")
        return value
    raise InvalidInputError(f"unknown wait schema {schema!r}")


_ANSWERS: dict[str, str] = {
    "bool": "a bool wait takes true or false, without quotes",
    "int": "an int wait takes a number such as 3, without quotes",
    "float": "a float wait takes a number such as 2.5, without quotes",
    "str": "strings need JSON quotes: '\"text\"'",
    "dict": 'a dict wait takes a JSON object: \'{"key": "value"}\'',
    "list": "a list wait takes a JSON array: '[1, 2]'",
    "model": 'this wait takes a JSON object: \'{"field": "value"}\'',
}


def answer_hint(schema: dict[str, Any] | None) -> str:
    """How an answer to a wait of this schema is written on the command line."""
    kind = (schema or {}).get("type")
    return _ANSWERS.get(str(kind), "strings need JSON quotes: '\"text\"'")


def _json_type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _validation_message(exc: Any) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ())) or "value"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


@overload
def wait(
    name: str,
    *,
    schema: type[T],
    question: str | None = None,
    timeout: float | timedelta | None = None,
    default: Any = _MISSING,
    metadata: dict[str, Any] | None = None,
) -> T: ...


@overload
def wait(
    name: str,
    *,
    schema: None = None,
    question: str | None = None,
    timeout: float | timedelta | None = None,
    default: Any = _MISSING,
    metadata: dict[str, Any] | None = None,
) -> Any: ...


def wait(
    name: str,
    *,
    schema: Any = None,
    question: str | None = None,
    timeout: float | timedelta | None = None,
    default: Any = _MISSING,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Pause the execution until input named `name` arrives; return it as `schema`.

    Without input yet, the execution becomes `waiting` and this call unwinds the flow
    (it cannot be caught by `except Exception`); answer it with
    `kitaru executions input <exec_id> <name> <json>`. Past `timeout` (seconds), the
    wait returns `default`, or fails the execution when no default was given.
    """
    ctx = _runtime.current()
    if ctx is None:
        raise KitaruUsageError("kitaru.wait() can only be called inside a @flow")
    if _runtime.current_frame.get() is not None:
        raise KitaruUsageError(
            f"kitaru.wait({name!r}) was called inside a checkpoint; call it from the flow "
            "body, between checkpoints"
        )
    if not isinstance(name, str) or not name or "#" in name or name != name.strip():
        raise KitaruUsageError(f"wait name {name!r} is not valid; use a name without '#'")
    stored_schema = schema_of(schema)
    caller = sys._getframe(1)
    site = f"{caller.f_code.co_filename}:{caller.f_lineno}"
    first_site = ctx.wait_sites.setdefault(name, site)
    if first_site != site:
        raise KitaruUsageError(
            f"wait name {name!r} is used at two places ({first_site} and {site}); give each "
            "wait its own name (a wait inside a loop may repeat: its keys are name, name#2, ...)"
        )
    key, seq = ctx.next_wait(name)
    record = ctx.waits.get(key)
    now = time.time()
    if record is not None and record.metadata.get("sleep"):
        raise KitaruUsageError(
            f"{key!r} of execution {ctx.exec_id} is a kitaru.sleep() in the journal, but the "
            "flow now waits there; give the wait another name"
        )
    if record is not None and record.status == "answered" and record.value_artifact:
        artifact = ctx.journal.get_artifact(record.value_artifact)
        assert artifact is not None
        if ctx.trace is not None:
            ctx.trace.wait(key, "answered")
        return _typed(answer_value(artifact, ctx.store_uri), schema)
    if record is None:
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        if default is not _MISSING:
            try:
                json.dumps(default)
            except TypeError:
                default = _serialize.encode(default, what="wait default").data
                default = json.loads(bytes(default))
        record = WaitRecord(
            exec_id=ctx.exec_id,
            key=key,
            name=name,
            seq=seq,
            question=question,
            schema=stored_schema,
            created_at=now,
            timeout_at=now + seconds if seconds is not None else None,
            default=None if default is _MISSING else default,
            has_default=default is not _MISSING,
            call_site=site,
            metadata=metadata or {},
        )
        ctx.journal.create_wait(record, owner=ctx.owner)
        ctx.waits[key] = record
        ctx.feed.add("wait", key, None, {"question": question, "timeout_at": record.timeout_at})
    elif record.timeout_at is not None and now >= record.timeout_at:
        if not record.has_default:
            raise WaitTimeoutError(
                f"wait {key!r} of execution {ctx.exec_id} timed out after "
                f"{record.timeout_at - record.created_at:g} s with no input and no default"
            )
        artifact = ctx.artifact(
            record.default,
            name=key,
            producer="wait",
            producer_key=key,
            what=f"wait {key!r}",
            metadata={"timed_out": True},
        )
        ctx.journal.answer_wait(ctx.exec_id, key, artifact, now=now)
        if ctx.trace is not None:
            ctx.trace.wait(key, "timed_out")
        return _typed(record.default, schema)
    if ctx.trace is not None:
        ctx.trace.wait(key, "waiting")
    raise ExecutionSuspended(ctx.exec_id, key)


def answer_value(artifact: ArtifactRecord, store_uri: str) -> Any:
    """A stored answer as plain JSON: answers come from outside the flow, so their bytes
    are parsed as JSON and typed by the flow's own schema, never by a type they name."""
    ok, value = _serialize.to_jsonable(artifact.serializer, read_bytes(artifact, store_uri))
    if not ok:
        raise SerializationError(
            f"the answer to wait {artifact.name!r} is {artifact.serializer} data, not JSON; "
            "answer the wait again with JSON"
        )
    return value


def _typed(value: Any, schema: Any) -> Any:
    if schema is None or schema is Any:
        return value
    if schema is float and isinstance(value, int):
        return float(value)
    if isinstance(schema, type) and schema.__module__ == "builtins":
        return value
    from pydantic import TypeAdapter

    return TypeAdapter(schema).validate_python(value)
