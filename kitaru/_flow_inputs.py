"""A flow's inputs: bound from a call, stored as artifacts, loaded back for a resume,
a replay or a queued run, and turned back into the call's arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kitaru._errors import KitaruError
from kitaru.artifacts import ArtifactStore, open_store
from kitaru.journal import ArtifactRecord, ExecutionRecord, Journal

if TYPE_CHECKING:
    from kitaru._serialize import Encoded


def bind_inputs(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The flow's arguments by parameter name, as given (defaults are not stored)."""
    try:
        bound = _signature(fn).bind(*args, **kwargs)
    except TypeError as exc:
        raise KitaruError(f"cannot call flow {fn.__name__!r}: {exc}") from None
    return dict(bound.arguments)


def call_args(fn: Callable[..., Any], inputs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments that reproduce a call from its bound inputs."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in _signature(fn).parameters.items():
        if name not in inputs:
            continue
        value = inputs[name]
        if param.kind is param.POSITIONAL_ONLY:
            args.append(value)
        elif param.kind is param.VAR_POSITIONAL:
            args.extend(value)
        elif param.kind is param.VAR_KEYWORD:
            kwargs.update(value)
        else:
            kwargs[name] = value
    return args, kwargs


def input_artifacts(
    exec_id: str,
    store_uri: str,
    fn: Callable[..., Any],
    inputs: dict[str, Any],
    *,
    allow_pickle: bool = False,
) -> list[ArtifactRecord]:
    """The flow's arguments as artifacts: JSON, or pickled where the flow allows pickle."""
    from kitaru import _serialize

    hints = _param_hints(fn)
    store = open_store(store_uri)
    out = []
    for name, value in inputs.items():
        encoded = _serialize.encode(
            value, what=f"flow input {name!r}", hint=hints.get(name), allow_pickle=allow_pickle
        )
        out.append(input_artifact(exec_id, store, name, encoded))
    return out


def input_artifact(
    exec_id: str, store: ArtifactStore, name: str, encoded: Encoded
) -> ArtifactRecord:
    """The artifact of one flow input, `name`, already encoded."""
    from kitaru._artifact_io import build_artifact

    return build_artifact(
        exec_id=exec_id,
        store=store,
        name=name,
        producer="input",
        producer_key=name,
        encoded=encoded,
    )


# Read on every start, kept once per function (hints not resolvable yet are not kept).
_SIGNATURES: dict[Callable[..., Any], inspect.Signature] = {}
_HINTS: dict[Callable[..., Any], dict[str, Any]] = {}


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    found = _SIGNATURES.get(fn) or inspect.signature(fn)
    if len(_SIGNATURES) < 1024:
        _SIGNATURES[fn] = found
    return found


def _param_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    if fn in _HINTS:
        return _HINTS[fn]
    import typing

    try:
        found = typing.get_type_hints(fn)
    except Exception:
        return {}
    if len(_HINTS) < 1024:
        _HINTS[fn] = found
    return found


def load_inputs(
    journal: Journal, record: ExecutionRecord, fn: Callable[..., Any], *, allow_pickle: bool = False
) -> dict[str, Any]:
    from kitaru._artifact_io import load_value

    hints = _param_hints(fn)
    return {
        a.name: load_value(
            full, record.artifact_store, hint=hints.get(a.name), allow_pickle=allow_pickle
        )
        for a in journal.list_artifacts(record.exec_id, producer="input")
        if (full := journal.get_artifact(a.artifact_id)) is not None
    }
