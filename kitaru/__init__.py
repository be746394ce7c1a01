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
    ExecutionFailedError,
    ExecutionWaitingError,
    KitaruError,
    KitaruUsageError,
    NonDeterminismError,
    NotFoundError,
    SerializationError,
    WaitTimeoutError,
)
from kitaru._flow import ExecutionHandle, Flow, flow
from kitaru._llm import LLMError, MissingAPIKeyError, ModelNotFoundError, ProviderError, llm
from kitaru._parallel import map, submit
from kitaru._retry import RetryPolicy
from kitaru._version import __version__
from kitaru._wait import wait

if TYPE_CHECKING:
    from kitaru.client import KitaruClient

__all__ = [
    "Checkpoint",
    "CheckpointTimeoutError",
    "ExecutionFailedError",
    "ExecutionHandle",
    "ExecutionWaitingError",
    "Flow",
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
    "flow",
    "llm",
    "load",
    "log",
    "map",
    "save",
    "submit",
    "wait",
]


def __getattr__(name: str) -> Any:
    # The client pulls in more than a flow needs; import it on first use.
    if name == "KitaruClient":
        from kitaru.client import KitaruClient

        return KitaruClient
    raise AttributeError(f"module 'kitaru' has no attribute {name!r}")
