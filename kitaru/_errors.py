"""The error hierarchy.

Every error Kitaru raises on purpose derives from `KitaruError`. Errors that mean
"you used the API wrongly" derive from `KitaruUsageError`; errors that mean "a
thing you asked for does not exist" derive from `NotFoundError` (the CLI maps
these to exit code 2). Control flow that must cross a user's `except Exception`
(a pending wait, a cancellation) derives from `BaseException`.
"""

from __future__ import annotations


class KitaruError(Exception):
    """Root of every error Kitaru raises on purpose."""


class KitaruUsageError(KitaruError):
    """The API or CLI was used in a way that cannot work; the message says the fix."""


class NotFoundError(KitaruError):
    """An execution, artifact, wait or stack id that the journal does not know."""


class ConfigurationError(KitaruError):
    """A setting (KITARU_HOME, a journal URL, a store URI) cannot be used."""


class SerializationError(KitaruError):
    """A value cannot be stored as an artifact."""


class ArtifactCorruptedError(KitaruError):
    """Stored bytes are missing or do not match the content hash in the journal."""


class NonDeterminismError(KitaruError):
    """A resumed flow reached a checkpoint call that the journal does not have there."""


class LeaseError(KitaruError):
    """Another process owns the execution (it is running, or being resumed)."""


class ExecutionFailedError(KitaruError):
    """The execution ended in `failed`; the message carries the original error."""


class ExecutionWaitingError(KitaruError):
    """The execution is paused at a wait; the message names the wait and how to answer it."""


class WaitTimeoutError(KitaruError):
    """A wait passed its timeout and had no default."""


class InvalidInputError(KitaruUsageError):
    """Input for a wait does not match the wait's schema."""


class CheckpointTimeoutError(KitaruError, TimeoutError):
    """A checkpoint call ran longer than its `timeout`; it counts as a failed attempt."""


class CheckpointError(KitaruError):
    """A checkpoint body raised; the original exception is the `__cause__`."""


class ExecutionSuspended(BaseException):
    """Unwinds a flow that reached a wait with no input yet.

    Derives from BaseException so that a user's `except Exception` cannot swallow it.
    """

    def __init__(self, exec_id: str, wait_key: str) -> None:
        super().__init__(f"execution {exec_id} is waiting at {wait_key!r}")
        self.exec_id = exec_id
        self.wait_key = wait_key


class ExecutionCancelled(BaseException):
    """Unwinds a flow whose cancellation was requested, at a checkpoint boundary."""

    def __init__(self, exec_id: str) -> None:
        super().__init__(f"execution {exec_id} was cancelled")
        self.exec_id = exec_id
