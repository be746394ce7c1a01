"""Waits as elicitation forms, and Kitaru's errors as tool errors."""

from __future__ import annotations

import functools
import json
import typing
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver.exceptions import ToolError

_T = typing.TypeVar("_T", bound=Callable[..., Any])

# The name a tool's MCP context is passed under (never a flow's own parameter).
CTX = "kitaru_mcp_context"
_PRIMITIVES = frozenset({"string", "number", "integer", "boolean"})
# Kitaru's wait types that a form holds as one field, and the field's JSON type.
_FORM_TYPES = {"bool": "boolean", "int": "integer", "float": "number", "str": "string"}


def friendly(tool: _T) -> _T:
    """Kitaru's own errors reach the client as the CLI says them (one line, what to
    do), not as a bare "Error executing tool"."""
    from kitaru._errors import KitaruError

    @functools.wraps(tool)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await tool(*args, **kwargs)
        except KitaruError as exc:
            raise ToolError(str(exc)) from None

    return typing.cast(_T, wrapper)


def form(message: str, schema: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """An elicitation form for a wait's schema (kitaru/_wait.py), and how to read the
    answer back: `fields` (a model of plain fields: the form is its JSON schema),
    `value` (bool, int, float, str: one field) or `json` (anything a form cannot hold:
    one text field with JSON in it)."""
    kind = schema.get("type")
    if kind in _FORM_TYPES:
        field = {"type": _FORM_TYPES[kind], "title": "Answer"}
        return (
            message,
            {"type": "object", "properties": {"value": field}, "required": ["value"]},
            "value",
        )
    if kind == "model":
        model = schema.get("json_schema") or {}
        props = model.get("properties")
        if (
            model.get("type") == "object"
            and isinstance(props, dict)
            and all(isinstance(p, dict) and p.get("type") in _PRIMITIVES for p in props.values())
        ):
            return message, model, "fields"
    field = {"type": "string", "title": "Answer (JSON)", "description": "a JSON value"}
    return (
        message,
        {"type": "object", "properties": {"value": field}, "required": ["value"]},
        "json",
    )


def read_answer(how: str, content: dict[str, Any]) -> Any:
    if how == "fields":
        return content
    value = content.get("value")
    if how == "json" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
