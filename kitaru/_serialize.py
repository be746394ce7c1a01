"""Turning values into artifact bytes and back, keeping their type.

Serializers, tried in this order:

| name | for | loads back as |
|---|---|---|
| `json` | None, bool, int, float, str, and lists/tuples/dicts (str keys) of those | the same builtin type (a top-level tuple stays a tuple; nested tuples come back as lists) |
| `bytes` | bytes, bytearray, memoryview | `bytes`, written and read without an extra copy |
| `pydantic` | pydantic models | the same model class |
| `dataclass` | dataclass instances | the same dataclass (nested types through pydantic) |
| `typed-json` | anything the producer's type annotation describes (`list[Report]`, ...) | the annotated type |
| `pickle` | anything else, only where the caller allowed it (`allow_pickle=True`) | the same object |

Pickle is never chosen silently: a value no JSON serializer can represent is an
error that names the fix.

Loading never imports a module because an artifact record names it (`type_ref`): a
record is data, and importing runs the module's code. A `pydantic` or `dataclass` value
comes back as its type when the program has that type already: the module that
defines it is imported (as a flow's module imports its models), or the caller passes
the type as the hint (a checkpoint's return annotation). Otherwise it comes back as the
plain JSON value (dicts and lists); import the defining module first to get the type.
"""

from __future__ import annotations

import dataclasses
import json
import json.scanner
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from kitaru._errors import SerializationError

_PLAIN_SCALARS = (str, int, float, bool, type(None))

# Modules that a resumed script was loaded under: type refs written as "__main__:X"
# resolve against the script's module when it is loaded under another name.
module_aliases: dict[str, str] = {}


@dataclass(frozen=True, slots=True)
class Encoded:
    serializer: str
    type_ref: str
    data: bytes | memoryview


def type_ref(tp: type) -> str:
    return f"{tp.__module__}:{tp.__qualname__}"


def resolve_type(ref: str) -> Any:
    """The object `ref` ("module:qualname") names, in a module this program has imported
    already; SerializationError otherwise. Never imports anything."""
    module_name, _, qualname = ref.partition(":")
    module_name = module_aliases.get(module_name, module_name)
    obj: Any = sys.modules.get(module_name)
    if obj is None:
        raise SerializationError(
            f"type {ref} is not defined in this program (its module {module_name!r} is not "
            "imported; Kitaru never imports a module an artifact names); import it first, "
            "or read the raw value with `kitaru artifacts get`"
        )
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise SerializationError(
            f"module {module_name!r} has no {qualname!r} to load this artifact as; read the "
            "raw value with `kitaru artifacts get`"
        ) from None
    return obj


def _is_kind(serializer: str, tp: Any) -> bool:
    """Whether `tp` is a type `serializer` writes: a pydantic model, or a dataclass."""
    if not isinstance(tp, type):
        return False
    if serializer == "dataclass":
        return dataclasses.is_dataclass(tp)
    if "pydantic" not in sys.modules:
        return False
    from pydantic import BaseModel

    return issubclass(tp, BaseModel)


def _stored_type(serializer: str, ref: str, hint: Any) -> Any:
    """The type to rebuild a stored value as: the one its record names if this program
    has it, else the caller's hint if that is one; None for the plain JSON value."""
    try:
        named = resolve_type(ref)
    except SerializationError:
        named = None
    if _is_kind(serializer, named):
        return named
    if _is_kind(serializer, hint):
        return hint
    return None


def _is_plain(value: Any, depth: int = 0) -> bool:
    """Whether JSON represents `value` exactly (tuples aside): the hot path of every commit."""
    tp = type(value)
    if tp in _PLAIN_SCALARS:
        return True
    if depth > 200:
        return False
    if tp is dict:
        for k, v in value.items():
            if type(k) is not str or (
                type(v) not in _PLAIN_SCALARS and not _is_plain(v, depth + 1)
            ):
                return False
        return True
    if tp is list or tp is tuple:
        for v in value:
            if type(v) not in _PLAIN_SCALARS and not _is_plain(v, depth + 1):
                return False
        return True
    return False


# One encoder for every value: json.dumps() with options builds a new one per call.
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_decoder = json.JSONDecoder()
# The decoder's own value scanner (json.JSONDecoder.raw_decode calls it; the stubs
# type its argument as the scanner's class, not the decoder it reads settings from).
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(cast(Any, _decoder))


def _parse(text: str) -> Any:
    """`json.loads(text)`, twice as fast on the usual text (a value and nothing around
    it): every reused checkpoint of a replay or resume parses its output here."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return _decoder.decode(text)  # leading space or no value: its own error message
    return value if end == len(text) else _decoder.decode(text)


_adapters: dict[Any, Any] = {}


def _adapter(tp: Any) -> Any:
    adapter = _adapters.get(tp)
    if adapter is None:
        from pydantic import TypeAdapter

        adapter = _adapters[tp] = TypeAdapter(tp)
    return adapter


def _is_pydantic_model(value: Any) -> bool:
    if "pydantic" not in sys.modules:
        return False
    from pydantic import BaseModel

    return isinstance(value, BaseModel)


def encode(
    value: Any,
    *,
    what: str,
    hint: Any = None,
    allow_pickle: bool = False,
) -> Encoded:
    """Serialize `value`; `what` names the producer in error messages."""
    tp = type(value)
    if tp is str:
        return Encoded("json", "builtins:str", json.dumps(value).encode())
    if _is_plain(value):
        data = _compact(value).encode()
        return Encoded("json", f"builtins:{tp.__name__}", data)
    if tp is bytes or tp is bytearray or tp is memoryview:
        return Encoded("bytes", "builtins:bytes", memoryview(value).cast("B"))
    if _is_pydantic_model(value):
        return Encoded("pydantic", type_ref(tp), value.model_dump_json().encode())
    try:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return Encoded("dataclass", type_ref(tp), _adapter(tp).dump_json(value))
        if hint is not None and hint is not Any:
            return Encoded("typed-json", _hint_name(hint), _adapter(hint).dump_json(value))
    except Exception as exc:
        if not allow_pickle:
            raise SerializationError(
                f"{what} returned a {_describe(tp)} that cannot be stored as JSON ({exc}); "
                "return JSON-compatible data, a pydantic model or a dataclass, or allow "
                "pickle with allow_pickle=True"
            ) from None
    if allow_pickle:
        import pickle

        try:
            return Encoded("pickle", type_ref(tp), pickle.dumps(value, protocol=5))
        except Exception as exc:
            raise SerializationError(
                f"{what} returned a {_describe(tp)} that cannot be pickled either ({exc}); "
                "return JSON-compatible data, a pydantic model or a dataclass"
            ) from None
    raise SerializationError(
        f"{what} returned a {_describe(tp)}, which Kitaru cannot store as JSON; return "
        "JSON-compatible data (dict keys must be str), a pydantic model or a dataclass, "
        "annotate the return type, or allow pickle with allow_pickle=True"
    )


def decode(serializer: str, ref: str, data: bytes, *, hint: Any = None) -> Any:
    """Deserialize bytes written by `encode`; `hint` is the producer's annotation if known."""
    if serializer == "json":
        # Decoding to str first skips json.loads's byte-encoding detection (hot on replay).
        value = _parse(data.decode() if isinstance(data, bytes) else bytes(data).decode())
        return tuple(value) if ref == "builtins:tuple" else value
    if serializer == "bytes":
        return bytes(data) if not isinstance(data, bytes) else data
    if serializer in ("pydantic", "dataclass"):
        tp = _stored_type(serializer, ref, hint)
        if tp is None:
            return json.loads(data)  # the type is not in this program (module docstring)
        if serializer == "pydantic":
            return tp.model_validate_json(data)
        return _adapter(tp).validate_json(data)
    if serializer == "typed-json":
        if hint is not None and hint is not Any:
            return _adapter(hint).validate_json(data)
        return json.loads(data)
    if serializer == "pickle":
        import pickle

        return pickle.loads(data)
    raise SerializationError(f"unknown serializer {serializer!r}; upgrade kitaru to read it")


def to_jsonable(serializer: str, data: bytes) -> tuple[bool, Any]:
    """The value as plain JSON without importing user types: (ok, value)."""
    if serializer in ("json", "pydantic", "dataclass", "typed-json"):
        return True, json.loads(data)
    if serializer == "bytes":
        try:
            return True, bytes(data).decode()
        except UnicodeDecodeError:
            return False, None
    return False, None


def _hint_name(hint: Any) -> str:
    if isinstance(hint, type):
        return type_ref(hint)
    return "typing:" + repr(hint).replace("typing.", "")


def _describe(tp: type) -> str:
    return tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"


def is_jsonable_type(tp: Any) -> bool:
    return tp in (bool, int, float, str, dict, list, type(None))


Loader = Callable[[bytes], Any]
