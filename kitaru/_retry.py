"""How a checkpoint call that raised is tried again: `RetryPolicy`."""

from __future__ import annotations

import random
from dataclasses import dataclass

from kitaru._errors import KitaruUsageError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to run a failed checkpoint call again, and how long to wait first.

    A call is tried at most `max_attempts` times. Before attempt n+1 it waits
    `delay * backoff ** (n - 1)` seconds, at most `max_delay`, plus up to `jitter` times
    that at random (spreading retries of parallel calls apart). An exception that is an
    instance of one of `non_retryable` fails the call at once. A timeout
    (`CheckpointTimeoutError`) is an attempt like any other failure.

        @checkpoint(retry_policy=RetryPolicy(max_attempts=5, delay=1, max_delay=30,
                                             jitter=0.5, non_retryable=(ValueError,)))
    """

    max_attempts: int = 1
    delay: float = 0.0
    backoff: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.0
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            problems.append(f"max_attempts must be 1 or more, not {self.max_attempts!r}")
        for field in ("delay", "max_delay", "jitter"):
            if getattr(self, field) < 0:
                problems.append(f"{field} must be 0 or more, not {getattr(self, field)!r}")
        if self.backoff < 1:
            problems.append(f"backoff must be 1 or more, not {self.backoff!r}")
        if not isinstance(self.non_retryable, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.non_retryable
        ):
            problems.append("non_retryable must be a tuple of exception classes")
        if problems:
            raise KitaruUsageError("invalid RetryPolicy: " + "; ".join(problems))

    @classmethod
    def of(cls, retries: int, retry_delay: float, policy: RetryPolicy | None) -> RetryPolicy:
        """The policy of `@checkpoint(retries=, retry_delay=)` or `retry_policy=`."""
        if policy is not None:
            if retries or retry_delay:
                raise KitaruUsageError(
                    "give either retries/retry_delay or retry_policy, not both; "
                    "RetryPolicy(max_attempts=retries + 1, delay=retry_delay) says the same"
                )
            if not isinstance(policy, RetryPolicy):
                raise KitaruUsageError(f"retry_policy must be a RetryPolicy, not {policy!r}")
            return policy
        if retries < 0:
            raise KitaruUsageError(f"retries must be 0 or more, not {retries}")
        if retry_delay < 0:
            raise KitaruUsageError(f"retry_delay must be 0 or more, not {retry_delay}")
        return cls(max_attempts=retries + 1, delay=retry_delay)

    def wait_before_next(self, attempts: int, exc: BaseException) -> float | None:
        """Seconds to wait before trying again after `attempts` failed ones; None: give up."""
        if attempts >= self.max_attempts or isinstance(exc, self.non_retryable):
            return None
        wait = min(self.delay * self.backoff ** (attempts - 1), self.max_delay)
        if self.jitter and wait:
            wait += random.uniform(0, self.jitter * wait)
        return wait
