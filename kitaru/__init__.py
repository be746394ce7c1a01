"""Kitaru: a durable runtime for Python agents.

    from kitaru import flow, checkpoint

    @checkpoint
    def research(topic: str) -> str: ...

    @flow
    def agent(topic: str) -> str:
        return research(topic)

A crashed, failed or waiting execution resumes where it stopped
(`kitaru executions resume <id>`); completed checkpoints are never run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The errors are imported at once (they are small, and `except kitaru.KitaruError` must
# work before anything else was used); every other public name is imported on first use
# (`__getattr__` below), so `kitaru executions list` pays only for what it runs.
from kitaru._errors import (
    CheckpointTimeoutError,
    ConfigurationError,
    ExecutionFailedError,
    ExecutionWaitingError,
    InvalidConfigurationError,
    JournalDamagedError,
    JournalUnavailableError,
    KitaruError,
    KitaruUsageError,
    NonDeterminismError,
    NotFoundError,
    SerializationError,
    WaitTimeoutError,
)
from kitaru._version import __version__

if TYPE_CHECKING:
    from kitaru._api import load, log, save
    from kitaru._checkpoint import Checkpoint, checkpoint
    from kitaru._events import emit
    from kitaru._flow import Flow, flow
    from kitaru._handle import ExecutionHandle
    from kitaru._llm import LLMError, MissingAPIKeyError, ModelNotFoundError, ProviderError, llm
    from kitaru._parallel import map, submit
    from kitaru._retry import RetryPolicy
    from kitaru._sleep import sleep
    from kitaru._wait import wait
    from kitaru.client import KitaruClient

# Where each lazily imported public name lives.
_LAZY = {
    "load": "kitaru._api",
    "log": "kitaru._api",
    "save": "kitaru._api",
    "Checkpoint": "kitaru._checkpoint",
    "checkpoint": "kitaru._checkpoint",
    "emit": "kitaru._events",
    "ExecutionHandle": "kitaru._handle",
    "Flow": "kitaru._flow",
    "flow": "kitaru._flow",
    "LLMError": "kitaru._llm",
    "MissingAPIKeyError": "kitaru._llm",
    "ModelNotFoundError": "kitaru._llm",
    "ProviderError": "kitaru._llm",
    "llm": "kitaru._llm",
    "map": "kitaru._parallel",
    "submit": "kitaru._parallel",
    "RetryPolicy": "kitaru._retry",
    "sleep": "kitaru._sleep",
    "wait": "kitaru._wait",
    "KitaruClient": "kitaru.client",
}

__all__ = [
    "Checkpoint",
    "CheckpointTimeoutError",
    "ConfigurationError",
    "ExecutionFailedError",
    "ExecutionHandle",
    "ExecutionWaitingError",
    "Flow",
    "InvalidConfigurationError",
    "JournalDamagedError",
    "JournalUnavailableError",
    "KitaruClient",
    "KitaruError",
    "KitaruUsageError",
    "LLMError",
    "MissingAPIKeyError",
    "ModelNotFoundError",
    "NonDeterminismError",
    "NotFoundError",
    "ProviderError",
    "RetryPolicy",
    "SerializationError",
    "WaitTimeoutError",
    "__version__",
    "checkpoint",
    "emit",
    "flow",
    "llm",
    "load",
    "log",
    "map",
    "save",
    "sleep",
    "submit",
    "wait",
]

# Errors show as `kitaru.ConfigurationError` in a traceback, the name users import them
# by, rather than the private module that defines them.
for _error in (
    CheckpointTimeoutError,
    ConfigurationError,
    ExecutionFailedError,
    ExecutionWaitingError,
    InvalidConfigurationError,
    JournalDamagedError,
    JournalUnavailableError,
    KitaruError,
    KitaruUsageError,
    NonDeterminismError,
    NotFoundError,
    SerializationError,
    WaitTimeoutError,
):
    _error.__module__ = "kitaru"
del _error


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module 'kitaru' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # the next use is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
