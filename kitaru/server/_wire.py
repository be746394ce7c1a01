"""Request models for journal records, built from the record dataclasses.

Every field of `ExecutionRecord`, `CallRecord`, `ArtifactRecord`, `WaitRecord`,
`LogRecord`, `StackRecord` and `DeploymentRecord` becomes a member of a pydantic model
of the same name, typed from the dataclass annotation and bounded: text is capped,
numbers are finite and bounded, bytes are base64 of at most the inline size, nested
records are validated the same way, unknown members are refused. A field added to a
record (with a default) travels through the server with no change here; a field that
needs a tighter bound than its type's gets a line in `_BOUNDS`.

Bodies are strict JSON: `"1"` is not a number and `"abc"` is not a time, so a request
that would store a row the journal cannot read back is a 422, not a 500 later.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Base64Bytes,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
)

from kitaru._artifact_io import INLINE_MAX
from kitaru.journal._events import KINDS, NAME_MAX
from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    DeploymentRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    StackRecord,
    WaitRecord,
)
from kitaru.remote._codec import field_types

# A number that is a time, a count or a size: finite, and what a float holds exactly.
MAX_INT = 2**53
Text = Annotated[str, StringConstraints(max_length=4096)]
LongText = Annotated[str, StringConstraints(max_length=256 * 1024)]
# Execution and artifact ids name folders in artifact stores: no separators, no leading dot.
Id = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][\w.#@+=,~-]*$")
]
Number = Annotated[float, Field(allow_inf_nan=False, ge=-1e15, le=1e15)]
Count = Annotated[int, Field(ge=-MAX_INT, le=MAX_INT)]


def _inline_size(value: bytes) -> bytes:
    if len(value) > INLINE_MAX:
        raise ValueError(
            f"inline bytes are at most {INLINE_MAX} bytes; larger values go to the artifact store"
        )
    return value


Inline = Annotated[Base64Bytes, Field(strict=False), AfterValidator(_inline_size)]

STATUSES = ("queued", "running", "waiting", "completed", "failed", "crashed", "cancelled")
ExecutionStatus = Literal["queued", "running", "waiting", "completed", "failed", "cancelled"]
SERIALIZERS = ("json", "bytes", "pydantic", "dataclass", "typed-json", "pickle")
PRODUCERS = ("checkpoint", "save", "wait", "input", "result", "override", "llm")

# Fields whose type alone is too loose (or too tight).
_BOUNDS: dict[tuple[type, str], Any] = {
    (ExecutionRecord, "exec_id"): Id,
    (ExecutionRecord, "status"): ExecutionStatus,
    (ExecutionRecord, "error"): LongText | None,
    (ExecutionRecord, "argv"): Annotated[list[Text], Field(max_length=1000)],
    (ArtifactRecord, "artifact_id"): Id,
    (ArtifactRecord, "exec_id"): Id,
    (ArtifactRecord, "serializer"): Literal[SERIALIZERS],
    (ArtifactRecord, "producer"): Literal[PRODUCERS],
    (ArtifactRecord, "size"): Annotated[int, Field(ge=0, le=MAX_INT)],
    (ArtifactRecord, "inline"): Inline | None,
    (CallRecord, "exec_id"): Id,
    (CallRecord, "status"): Literal["completed", "failed"],
    (CallRecord, "seq"): Annotated[int, Field(ge=0, le=MAX_INT)],
    (CallRecord, "error"): LongText | None,
    (CallRecord, "traceback"): LongText | None,
    (WaitRecord, "exec_id"): Id,
    (WaitRecord, "status"): Literal["pending", "answered"],
    (WaitRecord, "question"): LongText | None,
    (LogRecord, "exec_id"): Id,
    (LogRecord, "stream"): Literal["stdout", "stderr", "log"],
    (LogRecord, "text"): Annotated[str, StringConstraints(max_length=1024 * 1024)],
    (EventRecord, "exec_id"): Id,
    (EventRecord, "kind"): Literal[KINDS],
    (EventRecord, "name"): Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX)],
    (EventRecord, "call_key"): Annotated[str, StringConstraints(max_length=1000)] | None,
    (DeploymentRecord, "signature"): Annotated[list[dict[str, Any]], Field(max_length=1000)],
    (DeploymentRecord, "manifest"): Annotated[dict[Text, Text], Field(max_length=100_000)],
}

_CONFIG = ConfigDict(extra="forbid", strict=True, frozen=True)


def _bounded(tp: Any) -> Any:
    """The pydantic type for a record field of annotation `tp`."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = tuple(_bounded(a) for a in typing.get_args(tp))
        return functools.reduce(lambda a, b: a | b, args)
    if tp is type(None):
        return type(None)
    if tp is str:
        return Text
    if tp is bool:
        return bool
    if tp is int:
        return Count
    if tp is float:
        return Number
    if tp is bytes:
        return Inline
    if tp is Any:
        return Any
    if origin is dict:
        return Annotated[dict[Text, Any], Field(max_length=10_000)]
    if origin is list:
        (item,) = typing.get_args(tp)
        inner = _bounded(item)
        return Annotated[list[inner], Field(max_length=10_000)]  # type: ignore[valid-type]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return model_for(tp)
    raise TypeError(f"no wire type for {tp!r}")


_models: dict[type, type[BaseModel]] = {}


def model_for(cls: type) -> type[BaseModel]:
    """The request model of a record dataclass: one member per field, same defaults."""
    if cls in _models:
        return _models[cls]
    members: dict[str, Any] = {}
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    for name, tp in field_types(cls).items():
        annotation = _BOUNDS.get((cls, name)) or _bounded(tp)
        f = defaults[name]
        if f.default is not dataclasses.MISSING:
            spec = Field(f.default, alias=name)
        elif f.default_factory is not dataclasses.MISSING:
            spec = Field(default_factory=f.default_factory, alias=name)
        else:
            spec = Field(alias=name)
        members[_member(name)] = (annotation, spec)
    model: type[BaseModel] = create_model(f"{cls.__name__}Wire", __config__=_CONFIG, **members)
    _models[cls] = model
    return model


def _member(name: str) -> str:
    # A field named like a BaseModel attribute (WaitRecord.schema) is kept under another
    # member name; on the wire it keeps its own (the alias).
    return f"{name}_" if hasattr(BaseModel, name) else name


def to_record(cls: type[Any], model: BaseModel) -> Any:
    """The record dataclass a validated model stands for."""
    values: dict[str, Any] = {}
    for name, member, nested in _plan(cls):
        value = getattr(model, member)
        if nested is not None and isinstance(value, BaseModel):
            value = to_record(nested, value)
        elif isinstance(value, list):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        values[name] = value
    return cls(**values)


_plans: dict[type[Any], tuple[tuple[str, str, type[Any] | None], ...]] = {}


def _plan(cls: type[Any]) -> tuple[tuple[str, str, type[Any] | None], ...]:
    """Per field of a record: its name, its model member, the record class it nests."""
    found = _plans.get(cls)
    if found is not None:
        return found
    plan = []
    for name, hint in field_types(cls).items():
        inner = typing.get_args(hint) or (hint,)
        nested = next(
            (a for a in inner if isinstance(a, type) and dataclasses.is_dataclass(a)), None
        )
        plan.append((name, _member(name), nested))
    _plans[cls] = tuple(plan)
    return _plans[cls]


# Names for request members; mypy sees a model, the server the one built from the record.
if typing.TYPE_CHECKING:
    Execution: typing.TypeAlias = BaseModel
    Artifact: typing.TypeAlias = BaseModel
    Call: typing.TypeAlias = BaseModel
    Wait: typing.TypeAlias = BaseModel
    Log: typing.TypeAlias = BaseModel
    Stack: typing.TypeAlias = BaseModel
    Deployment: typing.TypeAlias = BaseModel
    Event: typing.TypeAlias = BaseModel
else:
    Execution = model_for(ExecutionRecord)
    Artifact = model_for(ArtifactRecord)
    Call = model_for(CallRecord)
    Wait = model_for(WaitRecord)
    Log = model_for(LogRecord)
    Stack = model_for(StackRecord)
    Deployment = model_for(DeploymentRecord)
    Event = model_for(EventRecord)
