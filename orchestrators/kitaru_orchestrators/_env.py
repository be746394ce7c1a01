"""Turning a SubmitRequest's environment and secret references into what a platform takes."""

from __future__ import annotations

from kitaru.stacks import SecretRef, SubmitRequest, resolved_environment

__all__ = ["resolved_environment", "short_id", "split_secrets"]


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
