"""Turning a SubmitRequest's environment and secret references into what a platform takes."""

from __future__ import annotations

from kitaru._errors import ConfigurationError
from kitaru.stacks import SecretRef, SubmitRequest


def resolved_environment(request: SubmitRequest, flavor: str) -> dict[str, str]:
    """Plain variables plus `env:` references read here; for platforms with no secret store."""
    env = dict(request.environment)
    for name, ref in request.secrets.items():
        if ref.kind != "env":
            raise ConfigurationError(
                f"secret_environment.{name}={ref}: the {flavor} orchestrator has no secret "
                f"store to read it from; use env:VAR_NAME (read on the submitting machine)"
            )
        env[name] = ref.resolve_env(what=f"secret_environment.{name}")
    return env


def split_secrets(
    request: SubmitRequest,
) -> tuple[dict[str, str], dict[str, SecretRef]]:
    """(plain variables including resolved env: references, platform secret references).

    An `env:` reference is read on the submitting machine and travels as a plain value in
    the job spec; a `secret:` reference stays a reference the platform resolves.
    """
    env = dict(request.environment)
    platform: dict[str, SecretRef] = {}
    for name, ref in request.secrets.items():
        if ref.kind == "env":
            env[name] = ref.resolve_env(what=f"secret_environment.{name}")
        else:
            platform[name] = ref
    return env, platform


def short_id(exec_id: str) -> str:
    """A name-safe lowercase id for platform object names (Job names, job definitions)."""
    return exec_id.lower().replace("_", "-")
