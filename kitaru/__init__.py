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

from kitaru._api import load, log, save
from kitaru._checkpoint import Checkpoint, checkpoint
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
from kitaru._events import emit
from kitaru._flow import Flow, flow
from kitaru._handle import ExecutionHandle
from kitaru._llm import LLMError, MissingAPIKeyError, ModelNotFoundError, ProviderError, llm
from kitaru._parallel import map, submit
from kitaru._retry import RetryPolicy
from kitaru._sleep import sleep
from kitaru._version import __version__
from kitaru._wait import wait

if TYPE_CHECKING:
    from kitaru.client import KitaruClient

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
    # The client pulls in more than a flow needs; import it on first use.
    if name == "KitaruClient":
        from kitaru.client import KitaruClient

        return KitaruClient
    raise AttributeError(f"module 'kitaru' has no attribute {name!r}")
