"""Journal records on the wire: JSON with bytes as base64, typed by the Journal protocol.

The protocol's annotations are the schema: the client encodes a method's arguments,
the server decodes them with the same method's parameter types, and the result goes
back the same way. A method added to the protocol travels without a change here.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import types
import typing
from collections.abc import Sequence
from typing import Any

from kitaru.journal import Journal

_BYTES = "$bytes"


def encode(value: Any) -> Any:
    """A JSON-ready form of records, lists of them, bytes and plain values."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__} to the server")


def decode(value: Any, tp: Any) -> Any:
    """Rebuild a value of type `tp` from `encode`'s output."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return decode(value, options[0]) if len(options) == 1 else value
    if origin in (list, Sequence, tuple):
        (item,) = typing.get_args(tp)[:1] or (Any,)
        return [decode(v, item) for v in value]
    if tp is bytes:
        return base64.b64decode(value[_BYTES])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _field_types(tp)
        return tp(**{k: decode(v, hints[k]) for k, v in value.items() if k in hints})
    return value


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def signature(method: str) -> tuple[dict[str, Any], Any]:
    """(parameter types by name, return type) of a Journal protocol method."""
    fn = getattr(Journal, method, None)
    if fn is None or method.startswith("_") or not callable(fn):
        raise KeyError(method)
    hints = typing.get_type_hints(fn)
    returns = hints.pop("return", None)
    return hints, returns


def journal_methods() -> list[str]:
    """Every method of the Journal protocol that crosses the wire."""
    return sorted(
        name
        for name, member in vars(Journal).items()
        if callable(member) and not name.startswith("_") and name != "close"
    )
