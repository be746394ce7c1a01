"""Model aliases (`kitaru model register fast openai/gpt-4o-mini`), kept in
`$KITARU_HOME/models.json`.

An alias names a model and how to reach it: the provider and model id, and
optionally a base URL, the environment variable that holds the API key, and prices.
Flows say `kitaru.llm(..., model="fast")`; switching `fast` to another model is a
change of settings, not of code.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kitaru import _config
from kitaru._errors import ConfigurationError, KitaruUsageError
from kitaru._llm._errors import ModelNotFoundError

PROVIDERS = ("openai", "anthropic", "ollama", "openrouter")

_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class ModelAlias:
    """One registered alias. Prices are USD per 1M tokens and override the built-in table."""

    name: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    input_price: float | None = None
    output_price: float | None = None

    @property
    def provider(self) -> str:
        return self.model.partition("/")[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings_path() -> Path:
    return _config.home() / "models.json"


def check_model(model: str) -> tuple[str, str]:
    """Split `provider/model-id`, or say what a valid model string looks like."""
    provider, sep, model_id = model.partition("/")
    if not sep or not model_id:
        raise KitaruUsageError(
            f"model {model!r} does not name a provider; write it as provider/model, for example "
            f"openai/gpt-4o-mini or anthropic/claude-3-5-haiku-latest (providers: {', '.join(PROVIDERS)})"
        )
    if provider not in PROVIDERS:
        raise KitaruUsageError(
            f"unknown provider {provider!r} in {model!r}; use one of {', '.join(PROVIDERS)} "
            "(any OpenAI-compatible server, such as vLLM, is openai/<model> with --base-url)"
        )
    return provider, model_id


def validate(alias: ModelAlias) -> ModelAlias:
    if not _ALIAS.match(alias.name) or "#" in alias.name:
        raise KitaruUsageError(
            f"alias {alias.name!r} is not a valid name; use letters, digits, '.', '_' and '-' "
            "(no '/', so that it is never mistaken for provider/model)"
        )
    check_model(alias.model)
    if alias.base_url is not None and not alias.base_url.startswith(("http://", "https://")):
        raise KitaruUsageError(
            f"--base-url {alias.base_url!r} is not an http(s) URL; for example "
            "http://localhost:11434/v1"
        )
    if alias.api_key_env is not None and not _ENV_VAR.match(alias.api_key_env):
        raise KitaruUsageError(
            f"--api-key-env {alias.api_key_env!r} is not an environment variable name; give the "
            "variable's name (MY_KEY), not the key itself"
        )
    for label, price in (
        ("--input-price", alias.input_price),
        ("--output-price", alias.output_price),
    ):
        if price is not None and price < 0:
            raise KitaruUsageError(f"{label} must be 0 or more (USD per 1M tokens), not {price}")
    return alias


def load_all() -> dict[str, ModelAlias]:
    path = settings_path()
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read model aliases from {path} ({exc}); fix or delete the file and register "
            "the aliases again"
        ) from None
    entries = raw.get("aliases", {}) if isinstance(raw, dict) else {}
    aliases: dict[str, ModelAlias] = {}
    for name, entry in entries.items():
        try:
            aliases[name] = ModelAlias(name=name, **{k: v for k, v in entry.items() if k != "name"})
        except TypeError:
            raise ConfigurationError(
                f"alias {name!r} in {path} has unknown fields; remove it with "
                f"`kitaru model remove {name}` and register it again"
            ) from None
    return aliases


def _write(aliases: dict[str, ModelAlias]) -> None:
    path = settings_path()
    data = {
        "aliases": {
            n: {k: v for k, v in a.to_dict().items() if k != "name"}
            for n, a in sorted(aliases.items())
        }
    }
    # Write-then-rename: a crash mid-write never leaves a half-written settings file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".models.", suffix=".json")
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


def register(alias: ModelAlias) -> bool:
    """Add or replace an alias; True if it replaced one."""
    validate(alias)
    with _changing():
        aliases = load_all()
        replaced = alias.name in aliases
        aliases[alias.name] = alias
        _write(aliases)
    return replaced


def remove(name: str) -> ModelAlias:
    with _changing():
        aliases = load_all()
        if name not in aliases:
            raise ModelNotFoundError(f"no model alias named {name!r}; {registered_text(aliases)}")
        removed = aliases.pop(name)
        _write(aliases)
    return removed


@contextmanager
def _changing() -> Iterator[None]:
    """Held while the aliases are read, changed and written back: of two `kitaru model
    register` at once, the one that wrote last would otherwise drop the other's alias."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; changes are not serialized
        yield
        return
    with open(settings_path().with_name(".models.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def registered_text(aliases: dict[str, ModelAlias]) -> str:
    if not aliases:
        return (
            "no aliases are registered (register one with "
            "`kitaru model register fast openai/gpt-4o-mini`)"
        )
    return "registered aliases: " + ", ".join(
        f"{a.name} ({a.model})" for a in sorted(aliases.values(), key=lambda a: a.name)
    )
