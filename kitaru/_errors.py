"""The error hierarchy.

Every error Kitaru raises on purpose derives from `KitaruError`. Errors that mean
"you used the API wrongly" derive from `KitaruUsageError`; errors that mean "a
thing you asked for does not exist" derive from `NotFoundError`, and a configuration
that cannot work as given is an `InvalidConfigurationError` (the CLI maps these three to
exit code 2: the fix is in the command or the settings). Control flow that must cross a user's `except Exception`
(a pending wait, a cancellation) derives from `BaseException`.
"""

from __future__ import annotations

import os
from typing import TypeVar


class KitaruError(Exception):
    """Root of every error Kitaru raises on purpose."""


class KitaruUsageError(KitaruError):
    """The API or CLI was used in a way that cannot work; the message says the fix."""


class NotFoundError(KitaruError):
    """An execution, artifact, wait or stack id that the journal does not know."""


class ConfigurationError(KitaruError):
    """A journal, store, server or platform that is set up cannot be used: unreachable,
    refused or damaged (exit code 1: it was tried and failed)."""


class InvalidConfigurationError(ConfigurationError):
    """The configuration cannot work as given: a setting that is wrong by itself
    (`KITARU_HOME` is a file, a URL of an unknown scheme) or an extra that is not
    installed (exit code 2: the fix is in the settings, and nothing was tried)."""


class JournalDamagedError(ConfigurationError):
    """The journal's file is not a readable database; the message says where it is and
    how to recover what it holds (`kitaru doctor` says more)."""


class SerializationError(KitaruError):
    """A value cannot be stored as an artifact."""


class ArtifactCorruptedError(KitaruError):
    """Stored bytes are missing or do not match the content hash in the journal."""


class NonDeterminismError(KitaruError):
    """A resumed flow reached a checkpoint call that the journal does not have there."""


class LeaseError(KitaruError):
    """Another process owns the execution (it is running, or being resumed)."""


class JournalUnavailableError(KitaruError):
    """The journal could not be reached or written for longer than the retry window
    (`KITARU_JOURNAL_RETRY_SECONDS`), or its disk is full: nothing was half-written, and
    the message says what failed."""


class ServerUnreachableError(ConfigurationError, JournalUnavailableError):
    """The Kitaru server did not answer within KITARU_SERVER_RETRY_SECONDS: a setup
    problem when a command starts, an outage of the journal for a running flow."""


class ArtifactStoreError(KitaruError):
    """An artifact's bytes could not be written, after the store's own retries; nothing
    in the journal points at them."""


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


def debugging() -> bool:
    """`KITARU_DEBUG=1`: show every traceback in full, for a bug report."""
    return os.environ.get("KITARU_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


E = TypeVar("E", bound="KitaruError")


def at_call_site(exc: E) -> E:
    """A setup error raised through a public entry point (`flow.run()`), without the
    frames inside kitaru: the user sees their own call and a message that says what to
    fix, which is all those frames would lead to (`KITARU_DEBUG=1` keeps them)."""
    return exc if debugging() else exc.with_traceback(None)


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


class ExecutionLost(BaseException):
    """Unwinds a flow whose journal stopped answering (or whose lease lapsed) while it
    ran: the process stops without recording anything more, and the execution shows as
    crashed. A BaseException so that a user's `except Exception` cannot keep the flow
    running bodies it could never commit."""

    def __init__(self, exec_id: str, reason: str) -> None:
        super().__init__(reason)
        self.exec_id = exec_id
        self.reason = reason


class ExecutionTakenOver(ExecutionLost):
    """Unwinds a flow whose execution another process took over (its lease lapsed while
    this one could not renew it): this process stops where it is, recording nothing
    more, and the flow's own retries do not run it again."""


class ExecutionReleased(ExecutionCancelled):
    """Unwinds a flow whose worker is stopping, at a checkpoint boundary: the execution
    goes back to its queue (not cancelled) for another worker to continue."""

    def __init__(self, exec_id: str) -> None:
        BaseException.__init__(self, f"execution {exec_id} was released by its worker")
        self.exec_id = exec_id
