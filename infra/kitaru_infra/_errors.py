"""Errors raised by kitaru_infra; all derive from Kitaru's own hierarchy so the CLI maps
them to `error: ...` and the usual exit codes."""

from __future__ import annotations

from kitaru import (
    ConfigurationError,
    InvalidConfigurationError,
    KitaruError,
    KitaruUsageError,
)


class InfraError(KitaruError):
    """Pulumi could not preview, provision or destroy a stack's infrastructure."""


class InfraConfigError(KitaruUsageError):
    """An infrastructure setting is missing or invalid; the message names the setting."""


class PulumiCliMissingError(ConfigurationError, InfraError):
    """The Pulumi CLI (the engine the Automation API drives) is not on PATH."""


class MissingExtraError(InvalidConfigurationError, InfraError):
    """The Pulumi SDK or a provider package for a flavor is not installed."""


CLI_INSTALL_HINT = (
    "install the Pulumi CLI with `curl -fsSL https://get.pulumi.com | sh` "
    "(or `brew install pulumi/tap/pulumi`), make sure `pulumi` is on PATH, then run this "
    "again"
)
