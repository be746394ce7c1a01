"""Input fingerprints: a short digest of each argument of a checkpoint call.

A resumed call is handed the output stored under its key. The fingerprint proves the
output was made from the same inputs: when they differ, the resume fails and names the
argument, instead of returning another call's output. Only digests are stored, never
the values.

A fingerprint reads `0=3f9a1c02,1=91e0...,topic=...`: the CRC-32 of each positional
argument (by index) and keyword argument (by name). It guards against mix-ups, not
attackers: CRC-32 tells apart any two short values that differ in up to 32 bits and
misses a random difference once in 4 billion, for a quarter of a cryptographic digest's
cost (this runs on every checkpoint call). An argument is digested by a JSON form that
is the same in every process (builtins, dicts whatever their keys, sets sorted, pydantic
models and dataclasses by their fields), and by its type alone where it has none (a
client object, a lock, a numpy array): such an argument is assumed to be the same
object it was, so mix-ups of such values are not caught.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from hashlib import blake2b
from typing import Any
from zlib import crc32

from kitaru._loader import module_ref


def _type_name(value: Any) -> str:
    t = type(value)
    # A script's classes are `__main__.X` when it runs and `__kitaru_main__.X` when it
    # is loaded again to resume: the recorded name is the same in both.
    return f"{module_ref(t.__module__)}.{t.__qualname__}"


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """A JSON-ready stand-in for `value` that is the same in every process: dicts with
    keys JSON cannot hold as pairs, sets sorted, models and dataclasses as their fields,
    and anything else by its type."""
    t = type(value)
    if t in _SCALARS:
        return value
    if t is list or t is tuple:
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        if all(type(k) is str for k in value):
            return {k: _plain(v) for k, v in value.items()}
        pairs = [[_canonical(k), _plain(v)] for k, v in value.items()]
        return {"$pairs": sorted(pairs, key=lambda p: str(p[0]))}
    if isinstance(value, set | frozenset):
        return {"$set": sorted(_canonical(v) for v in value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": blake2b(bytes(value), digest_size=16).hexdigest()}
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        # Python mode: a set field stays a set (sorted here), not a list in hash order.
        return _plain(dump(mode="python"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # A field not set yet (`init=False` without a default) is left out, not raised on.
        missing = object()
        fields = ((f.name, getattr(value, f.name, missing)) for f in dataclasses.fields(value))
        return {name: _plain(v) for name, v in fields if v is not missing}
    for base in (int, float, str):  # their subclasses
        if isinstance(value, base):
            return base(value)
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        return iso()
    if hasattr(value, "__fspath__") or t.__module__ in ("uuid", "decimal", "ipaddress"):
        return str(value)
    return {"$type": _type_name(value)}


def _canonical(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _bytes_of(value: Any) -> bytes:
    t = type(value)
    if t is bool or value is None:
        return b"c" + repr(value).encode()
    if t is float:
        return b"f" + repr(value).encode()
    if t is bytes:
        return b"y" + bytes(value)
    try:
        return b"j" + _canonical(value).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):
        # Keys JSON cannot order, a cycle: the type is all that can be compared.
        return b"t" + _type_name(value).encode()


def _digest(value: Any) -> int:
    t = type(value)
    if t is str:
        return crc32(value.encode("utf-8", "surrogatepass"), 0x73)
    if t is int:
        return crc32(b"i%d" % value)
    return crc32(_bytes_of(value))


_FORMATS: dict[int, str] = {}


def _format(n: int) -> str:
    """`0=%08x,1=%08x,...` for n positional arguments."""
    fmt = _FORMATS.get(n)
    if fmt is None:
        fmt = _FORMATS[n] = ",".join(f"{i}=%08x" for i in range(n))
    return fmt


# Argument types whose digest runs none of the caller's code, and so cannot raise.
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), bytes})


def cannot_fail(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Whether `fingerprint(args, kwargs)` surely returns: every argument is a string,
    number, bool, None or bytes (another value's digest may call its own code, such as
    `model_dump` or `isoformat`, which may raise)."""
    plain = _PLAIN_TYPES
    for a in args:
        if type(a) not in plain:
            return False
    return not kwargs or all(type(v) in plain for v in kwargs.values())


def fingerprint(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> str:
    # `_digest` written out for the types most arguments have: this runs on every call.
    digests = []
    for a in args:
        t = type(a)
        if t is str and a.isascii():
            digests.append(crc32(a.encode(), 0x73))
        elif t is int:
            digests.append(crc32(b"i%d" % a))
        else:
            digests.append(_digest(a))
    text = (_FORMATS.get(len(digests)) or _format(len(digests))) % tuple(digests)
    if kwargs:
        named = ",".join(f"{k}={_digest(kwargs[k]):08x}" for k in sorted(kwargs))
        text = f"{text},{named}" if text else named
    return text


def differences(recorded: str, now: str) -> str:
    """What differs between two fingerprints, in words (`argument 0`, `keyword 'q'`)."""

    def parse(fp: str) -> dict[str, str]:
        return dict(p.split("=", 1) for p in fp.split(",") if "=" in p)

    before, after = parse(recorded), parse(now)

    def name(arg: str) -> str:
        return f"argument {arg}" if arg.isdigit() else f"keyword {arg!r}"

    changed = [name(a) for a in before if a in after and before[a] != after[a]]
    gone = [name(a) for a in before if a not in after]
    new = [name(a) for a in after if a not in before]
    words = []
    if changed:
        words.append(", ".join(changed) + (" differs" if len(changed) == 1 else " differ"))
    if gone:
        words.append(", ".join(gone) + " no longer given")
    if new:
        words.append(", ".join(new) + " not given before")
    return "; ".join(words) or "the arguments differ"
