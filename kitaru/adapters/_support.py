"""What the adapters share: importing a harness with an install hint, checking its
version, turning harness objects into stored JSON, and naming checkpoint calls."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from types import ModuleType
from typing import Any

from kitaru import _serialize
from kitaru._errors import KitaruUsageError, SerializationError
from kitaru._llm._errors import UnsupportedVersionError


def require(module: str, *, distribution: str, extra: str) -> ModuleType:
    """Import a harness, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise KitaruUsageError(
            f"the {distribution} adapter needs {distribution}, which cannot be imported ({exc}); "
            f'install it with: pip install "kitaru[{extra}]"'
        ) from None


def _version_tuple(raw: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", raw)[:3])


def check_version(distribution: str, *, minimum: str, below: str, extra: str) -> str:
    """The installed version, or UnsupportedVersionError naming the supported range."""
    try:
        installed = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise KitaruUsageError(
            f'{distribution} is not installed; install it with: pip install "kitaru[{extra}]"'
        ) from None
    if not (_version_tuple(minimum) <= _version_tuple(installed) < _version_tuple(below)):
        raise UnsupportedVersionError(
            f"{distribution} {installed} is installed, but the Kitaru adapter supports "
            f"{distribution}>={minimum},<{below}; install a supported version with: "
            f'pip install "kitaru[{extra}]"'
        )
    return installed


def call_name(*parts: str) -> str:
    """A checkpoint name from harness names (agent, tool): no '#', no surrounding spaces."""
    cleaned = [re.sub(r"[#\s]+", "_", p.strip()) or "_" for p in parts]
    return ".".join(cleaned)


def storable(value: Any, what: str) -> Any:
    """`value` itself if Kitaru can store it with its type, else its JSON form.

    Tool results are often plain data or pydantic models (stored as such and read back
    as the same type); anything else is stored as the JSON that the harness would send
    to the model anyway.
    """
    try:
        _serialize.encode(value, what=what)
        return value
    except SerializationError:
        from pydantic_core import to_jsonable_python

        try:
            return to_jsonable_python(value)
        except Exception as exc:
            raise SerializationError(
                f"{what} returned a {type(value).__name__} that cannot be stored as JSON ({exc}); "
                "return JSON-compatible data or a pydantic model from the tool"
            ) from None
