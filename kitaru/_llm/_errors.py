"""Errors of `kitaru.llm()`, the model aliases and the harness adapters."""

from __future__ import annotations

from kitaru._errors import ConfigurationError, KitaruError, KitaruUsageError, NotFoundError


class LLMError(KitaruError):
    """Root of every error `kitaru.llm()` raises on purpose."""


class ModelNotFoundError(LLMError, NotFoundError):
    """A model name that is neither a registered alias nor `provider/model`."""


class MissingAPIKeyError(LLMError, ConfigurationError):
    """The environment variable that holds the provider's API key is not set."""

    def __init__(self, message: str, *, variable: str) -> None:
        super().__init__(message)
        self.variable = variable


class ProviderError(LLMError):
    """The provider answered with an error (after retries, for rate limits and 5xx)."""

    def __init__(
        self, message: str, *, status_code: int | None, provider: str, provider_message: str
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.provider = provider
        self.provider_message = provider_message


class UnsupportedVersionError(KitaruUsageError):
    """An agent harness is installed in a version the adapter was not built for."""
