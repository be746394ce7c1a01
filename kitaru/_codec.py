"""Journal records on the wire: every field of a record dataclass as a JSON member of the
same name, bytes as base64 text, a nested record as an object.

Both sides derive the shape from the dataclasses in `kitaru/journal/_records.py`: the
client encodes with `to_wire` and decodes with `from_wire`, the server validates bodies
with pydantic models built from the same fields (kitaru/server/_wire.py). A field added
to a record travels without a change here.
"""

from __future__ import annotations

import base64
import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_wire(value: Any) -> Any:
    """A JSON-ready form of a record, a list of records, or a plain value."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__} to the server")


def from_wire(cls: type[T], data: Any) -> T:
    """The record of class `cls` that `to_wire` made; members it does not know (a newer
    server's fields) are left out."""
    hints = field_types(cls)
    kwargs = {name: _value(data[name], tp) for name, tp in hints.items() if name in data}
    return cls(**kwargs)


def many(cls: type[T], data: Any) -> list[T]:
    return [from_wire(cls, item) for item in data]


def maybe(cls: type[T], data: Any) -> T | None:
    return None if data is None else from_wire(cls, data)


def _value(value: Any, tp: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _value(value, options[0]) if len(options) == 1 else value
    if tp is bytes:
        return base64.b64decode(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_wire(tp, value)
    return value


_fields: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """Each field of a record dataclass with its type, in declaration order."""
    found = _fields.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _fields[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return found
