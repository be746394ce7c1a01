"""Secrets in stack settings are references, never values.

| reference | resolved | by |
|---|---|---|
| `env:NAME` | the environment variable NAME | the machine that submits the execution |
| `secret:NAME` or `secret:NAME#KEY` | a secret in the platform's secret store | the platform, where the container starts |

`secret:` names a Kubernetes Secret (KEY is its data key), an AWS Secrets Manager or
SSM Parameter ARN, a GCP Secret Manager secret, or an Azure Key Vault secret URL,
depending on the stack's orchestrator.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kitaru._errors import ConfigurationError, InvalidInputError

HOW_TO_REFERENCE = (
    "store a reference instead: env:VAR_NAME (an environment variable on the machine that "
    "submits executions) or secret:NAME (a secret in the platform's secret store)"
)

_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
    r"auth|connection[_-]?string|dsn)",
    re.IGNORECASE,
)
_SECRET_VALUE = [
    re.compile(r"://[^/\s:@]+:[^@\s/]+@"),  # a URL with a password in it
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{20,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),
    re.compile(r"AccountKey=|SharedAccessSignature=|[?&]sig=", re.IGNORECASE),
]
_TOKENISH = re.compile(r"^[A-Za-z0-9+/=_-]{32,}$")


@dataclass(frozen=True, slots=True)
class SecretRef:
    kind: Literal["env", "secret"]
    name: str
    key: str | None = None

    @classmethod
    def parse(cls, text: str, *, what: str = "value") -> SecretRef:
        kind, sep, rest = text.partition(":")
        if not sep or kind not in ("env", "secret") or not rest:
            raise InvalidInputError(
                f"{what} {text!r} is not a secret reference; use env:VAR_NAME or secret:NAME"
            )
        name, _, key = rest.partition("#")
        return cls(kind, name, key or None)  # type: ignore[arg-type]

    def resolve_env(self, *, what: str) -> str:
        """The value of an `env:` reference on this machine."""
        value = os.environ.get(self.name)
        if value is None:
            raise ConfigurationError(
                f"{what} refers to the environment variable {self.name}, which is not set "
                f"here; export {self.name}=... before running"
            )
        return value

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + (f"#{self.key}" if self.key else "")


def is_reference(text: str) -> bool:
    kind, sep, rest = text.partition(":")
    return bool(sep and rest) and kind in ("env", "secret")


def looks_like_secret(key: str, value: str) -> bool:
    """Whether a plain setting seems to hold a secret (so it must be a reference)."""
    if is_reference(value):
        return False
    if any(p.search(value) for p in _SECRET_VALUE):
        return True
    if _SECRET_KEY.search(key) and value.strip():
        return True
    has_mixed = re.search(r"[a-z]", value) and re.search(r"[A-Z]", value)
    return bool(_TOKENISH.match(value) and has_mixed and re.search(r"[0-9]", value))


def reject_plain_secret(key: str, value: str, *, by_name: bool = True) -> None:
    """Refuse a value that looks like a secret; `by_name=False` judges the value alone
    (the items of a list such as `image_pull_secrets` name secrets, they are none)."""
    if looks_like_secret(key if by_name else "", value):
        raise InvalidInputError(
            f"setting {key!r} looks like a secret and secrets are never stored in plain "
            f"text; {HOW_TO_REFERENCE}, e.g. --set {key}=env:{_env_name(key)}"
        )


def check_settings(raw: Mapping[str, Any]) -> None:
    """The rules every stack's settings follow, whoever registers it: a container's
    `secret_environment` holds only references, and no other setting, map entry or list
    item holds what looks like a secret."""
    for key, value in raw.items():
        if key == "secret_environment" and isinstance(value, dict):
            for var, ref in value.items():
                if not is_reference(str(ref)):
                    raise InvalidInputError(
                        f"--set secret_environment.{var}: {ref!r} is not a reference; "
                        f"{HOW_TO_REFERENCE}"
                    )
        elif isinstance(value, dict):
            for sub, text in value.items():
                reject_plain_secret(f"{key}.{sub}", str(text))
        elif isinstance(value, list):
            for item in value:
                reject_plain_secret(key, str(item), by_name=False)
        elif isinstance(value, str):
            reject_plain_secret(key, value)


def _env_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", key.rsplit(".", 1)[-1]).upper() or "SECRET"
