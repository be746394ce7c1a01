"""Checking `replay --override KEY=JSON` and `--input NAME=JSON` against what the source
execution recorded, before anything runs.

A stored JSON value records the Python type it had (`builtins:int`). A value of another
kind would fail later, deep inside the replayed checkpoint, or be read back as something
else (`42` where a `str` was stored); refusing it here names the key and the fix. Only
clear mismatches are refused: numbers stand in for each other (a `float` parameter may
have been given `3`), and `null` is allowed (the annotation may be optional). Types
other than JSON builtins are checked by their own decoders when the replay runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kitaru._errors import InvalidInputError
from kitaru.journal import ArtifactRecord, Journal

_KINDS: dict[str, tuple[str, tuple[type, ...]]] = {
    "builtins:str": ("str", (str,)),
    "builtins:int": ("int", (int, float)),
    "builtins:float": ("float", (int, float)),
    "builtins:bool": ("bool", (bool,)),
    "builtins:list": ("list", (list,)),
    "builtins:tuple": ("tuple", (list,)),
    "builtins:dict": ("dict", (dict,)),
}


def check(
    journal: Journal,
    exec_id: str,
    *,
    overrides: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
) -> None:
    if overrides:
        outputs = {c.key: c.output for c in journal.calls(exec_id) if c.output is not None}
        for key, value in overrides.items():
            _fits(outputs.get(key), value, f"--override {key}", "the checkpoint returned")
    if inputs:
        given = {a.name: a for a in journal.list_artifacts(exec_id) if a.producer == "input"}
        for name, value in inputs.items():
            _fits(given.get(name), value, f"--input {name}", "the flow was given")


_EXAMPLES: dict[str, str] = {
    "int": "3",
    "float": "2.5",
    "bool": "true",
    "list": "'[1, 2]'",
    "tuple": "'[1, 2]'",
    "dict": "'{\"key\": 1}'",
}


def _fits(stored: ArtifactRecord | None, value: Any, option: str, what: str) -> None:
    if stored is None or stored.serializer != "json" or value is None:
        return
    kind = _KINDS.get(stored.type_ref)
    if kind is None:
        return
    name, accepted = kind
    if isinstance(value, accepted) and not (isinstance(value, bool) and bool not in accepted):
        return
    flag, key = option.split(" ", 1)
    if name == "str":
        text = value if isinstance(value, str) else json.dumps(value)
        fix = f"for the text {text} write {flag} {key}='{json.dumps(text)}'"
    else:
        fix = f"give {_article(name)} {name}, such as {flag} {key}={_EXAMPLES[name]}"
    raise InvalidInputError(
        f"{option}: {what} {_article(name)} {name} there, and {json.dumps(value)} is "
        f"{_kind_of(value)}; {fix} (nothing was run or recorded)"
    )


def _article(name: str) -> str:
    return "an" if name[0] in "aeiou" else "a"


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a bool"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
