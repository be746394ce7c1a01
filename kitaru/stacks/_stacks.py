"""Registered stacks: the built-in `local` one, the ones in the journal, and the active one.

The active stack is, first to last: `@flow(stack=...)`, `KITARU_STACK`, the one chosen with
`kitaru stack use` (stored in the journal), `local`. Executions record the stack they
were started on; switching stacks later never moves them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Collection
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from kitaru import _config
from kitaru._errors import ConfigurationError, KitaruUsageError
from kitaru.journal import Journal, StackRecord
from kitaru.stacks import _secrets
from kitaru.stacks._flavor import StackFlavor, installed_flavors, load_flavor
from kitaru.stacks._resolve import (  # re-exported: the CLI and tests use them from here
    ACTIVE_SETTING,
    LOCAL,
    active_name,
    get_stack,
    journal_url_for,
    list_stacks,
    local_stack,
    names,
    resolve,
)

__all__ = [
    "ACTIVE_SETTING",
    "LOCAL",
    "active_name",
    "check_reachable",
    "delete",
    "describe",
    "get_stack",
    "journal_url_for",
    "list_stacks",
    "local_stack",
    "names",
    "register",
    "resolve",
    "use",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def use(journal: Journal, name: str) -> StackRecord:
    stack = get_stack(journal, name)
    journal.set_setting(ACTIVE_SETTING, None if name == LOCAL else name)
    return stack


def delete(journal: Journal, name: str) -> None:
    if name == LOCAL:
        raise KitaruUsageError("the local stack is built in and cannot be deleted")
    get_stack(journal, name)
    journal.delete_stack(name)
    if journal.get_setting(ACTIVE_SETTING) == name:
        journal.set_setting(ACTIVE_SETTING, None)


def register(
    journal: Journal,
    name: str,
    *,
    orchestrator: str,
    artifact_store: str,
    journal_url: str | None = None,
    registry: str | None = None,
    builder: str | None = None,
    settings: list[str] | None = None,
    replace: bool = False,
    check: bool = True,
) -> StackRecord:
    """Validate everything a stack names and store it; nothing is stored on an error."""
    if name == LOCAL:
        raise KitaruUsageError("the name 'local' belongs to the built-in stack; pick another")
    if not _NAME.match(name):
        raise KitaruUsageError(
            f"stack name {name!r} is not valid; use lowercase letters, digits, '-' and '_'"
        )
    if not replace and journal.get_stack(name) is not None:
        raise KitaruUsageError(
            f"stack {name!r} already exists; pass --replace to overwrite it, or delete it "
            f"first: kitaru stack delete {name}"
        )
    if orchestrator not in installed_flavors():
        from kitaru.stacks._plugins import KNOWN_EXTRAS

        if orchestrator in KNOWN_EXTRAS:
            load_flavor(orchestrator)  # raises with the pip install that adds it
        raise KitaruUsageError(
            f"unknown orchestrator flavor {orchestrator!r}; installed: "
            f"{', '.join(installed_flavors())}"
        )
    flavor = load_flavor(orchestrator)
    values = validate_settings(flavor, settings or [])
    if orchestrator != "local" or values.get("mode") == "subprocess":
        from kitaru.stacks import _plugins

        # The implementation and its SDK must be installed, or nothing could run on it.
        _plugins.load("kitaru.orchestrators", orchestrator)
    _check_store_uri(artifact_store)
    if journal_url is not None:
        _check_journal_url(journal_url)
    effective_journal = journal_url or _config.journal_url()
    if flavor.needs_network_journal and _scheme(_plain_url(effective_journal)) == "sqlite":
        raise KitaruUsageError(
            f"--journal: the {orchestrator} orchestrator runs executions where the SQLite "
            f"journal {effective_journal} cannot be opened; pass a shared journal, e.g. "
            "--journal postgresql://user@host:5432/kitaru (keep the password out of it: "
            "--set secret_environment.PGPASSWORD=env:PGPASSWORD, or --journal env:VAR_NAME)"
        )
    chosen_builder = builder or flavor.default_builder
    if builder is not None:
        if flavor.default_builder is None:
            raise KitaruUsageError(
                f"--builder: the {orchestrator} orchestrator runs the project as it is and "
                "builds no image; leave --builder out"
            )
        from kitaru.stacks import _plugins

        _plugins.load("kitaru.builders", builder)
    if flavor.needs_registry and not registry:
        raise KitaruUsageError(
            f"--registry is required for a {orchestrator} stack: the image is pushed there "
            "for the platform to pull, e.g. --registry 123456789012.dkr.ecr.us-east-1."
            "amazonaws.com/kitaru or --registry localhost:5000/kitaru"
        )
    if registry is not None:
        _check_registry_uri(registry)
    now = time.time()
    existing = journal.get_stack(name)
    record = StackRecord(
        name=name,
        orchestrator=orchestrator,
        artifact_store=artifact_store,
        journal=journal_url,
        registry=registry,
        builder=chosen_builder,
        settings=values,
        created_at=existing.created_at if existing else now,
        updated_at=now,
    )
    if check:
        check_reachable(record, flavor)
    if not journal.put_stack(record, replace=replace):
        raise KitaruUsageError(f"stack {name!r} was registered by someone else just now")
    return record


# -- settings --------------------------------------------------------------------------


def parse_sets(items: list[str], *, secret_names: Collection[str] = ()) -> dict[str, Any]:
    """`--set key=value` (and `--set map.key=value`) into a dict of raw values.

    A value that looks like a secret is refused; keys in `secret_names` hold names of
    secrets in a platform's store (e.g. `image_pull_secrets`), so only their values are
    checked, not their key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise KitaruUsageError(f"--set expects KEY=VALUE, got {item!r}")
        head, dot, sub = key.partition(".")
        if dot:
            bucket = out.setdefault(head, {})
            if not isinstance(bucket, dict):
                raise KitaruUsageError(f"--set {head} is given both as a value and as a map")
            bucket[sub] = value
        else:
            _secrets.reject_plain_secret("" if key in secret_names else key, value)
            out[key] = _value(value)
    return out


def _value(raw: str) -> Any:
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise KitaruUsageError(f"--set value {raw!r} is not valid JSON: {exc.msg}") from None
    return raw


def validate_settings(flavor: StackFlavor, items: list[str]) -> dict[str, Any]:
    model = flavor.settings_model
    fields = model.model_fields
    raw = parse_sets(items, secret_names=secret_name_fields(model))
    for key in raw:
        if key not in fields:
            raise KitaruUsageError(
                f"--set {key}: the {flavor.name} stack has no setting {key!r}; its settings: "
                f"{', '.join(fields)} (see: kitaru stack flavors {flavor.name})"
            )
    for key, value in raw.items():
        if key == "secret_environment" and isinstance(value, dict):
            for var, ref in value.items():
                if not _secrets.is_reference(str(ref)):
                    raise KitaruUsageError(
                        f"--set secret_environment.{var}: {ref!r} is not a reference; "
                        f"{_secrets.HOW_TO_REFERENCE}"
                    )
        elif isinstance(value, dict):
            for sub, text in value.items():
                _secrets.reject_plain_secret(f"{key}.{sub}", str(text))
    try:
        validated: BaseModel = model.model_validate(raw)
    except ValidationError as exc:
        raise KitaruUsageError(_explain(flavor, exc)) from None
    return validated.model_dump(mode="json", exclude_unset=True)


def secret_name_fields(model: type[BaseModel]) -> set[str]:
    return {
        name
        for name, field in model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret_names")
    }


def _explain(flavor: StackFlavor, exc: ValidationError) -> str:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "?"
    field = flavor.settings_model.model_fields.get(str(err["loc"][0])) if err["loc"] else None
    about = f" ({field.description})" if field is not None and field.description else ""
    if err["type"] == "missing":
        return f"setting {key!r} is required for a {flavor.name} stack{about}; add --set {key}=..."
    return f"setting {key!r}: {err['msg']}{about}; fix it with --set {key}=..."


# -- URIs and reachability ---------------------------------------------------------------


def _scheme(url: str) -> str:
    return url.partition("://")[0] if "://" in url else ""


def _plain_url(url: str) -> str:
    """A journal URL, with an `env:` reference resolved when it can be."""
    if _secrets.is_reference(url):
        ref = _secrets.SecretRef.parse(url)
        if ref.kind == "env" and ref.name in os.environ:
            return os.environ[ref.name]
        return "postgresql://"  # resolved where the container starts
    return url


def _check_store_uri(uri: str) -> None:
    from kitaru.artifacts import _STORES

    scheme = _scheme(uri)
    if scheme not in _STORES or (not urlparse(uri).netloc and scheme != "file"):
        known = ", ".join(f"{s}://" for s in _STORES)
        raise KitaruUsageError(
            f"--artifact-store {uri!r} is not a valid artifact store URI; use one of "
            f"{known} (e.g. s3://bucket/prefix or file:///path)"
        )
    _secrets.reject_plain_secret("artifact_store", uri)


def _check_journal_url(url: str) -> None:
    if _secrets.is_reference(url):
        ref = _secrets.SecretRef.parse(url, what="--journal")
        if ref.key is not None and ref.kind == "env":
            raise KitaruUsageError(f"--journal {url!r}: env references take no #key")
        return
    if _scheme(url) not in ("sqlite", "postgresql", "postgres"):
        raise KitaruUsageError(
            f"--journal {url!r} is not a journal URL; use postgresql://user@host:5432/db, "
            "sqlite:///path/journal.db, or env:VAR_NAME holding the URL"
        )
    if urlparse(url).password:
        raise KitaruUsageError(
            "--journal contains a password, and secrets are never stored in plain text; "
            "put the URL in an environment variable and pass --journal env:VAR_NAME, or "
            "leave the password out and --set secret_environment.PGPASSWORD=env:PGPASSWORD"
        )


def _check_registry_uri(uri: str) -> None:
    if "://" in uri or not uri or uri.startswith("/") or " " in uri:
        raise KitaruUsageError(
            f"--registry {uri!r} is not a registry address; use host[:port]/path without a "
            "scheme, e.g. localhost:5000/kitaru or 123456789012.dkr.ecr.us-east-1."
            "amazonaws.com/kitaru"
        )


def check_reachable(stack: StackRecord, flavor: StackFlavor) -> None:
    """Open the journal, the bucket and the registry the stack names, then the platform."""
    from kitaru.artifacts import open_store
    from kitaru.journal import open_journal

    if stack.journal is not None and not (
        _secrets.is_reference(stack.journal)
        and _secrets.SecretRef.parse(stack.journal).kind == "secret"
    ):
        try:
            open_journal(journal_url_for(stack))
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"--journal cannot be reached: {exc} (or pass --no-check to register anyway)"
            ) from None
    try:
        open_store(stack.artifact_store).check()
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"--artifact-store cannot be used: {exc} (or pass --no-check to register anyway)"
        ) from None
    if stack.registry is not None:
        from kitaru.stacks._registry_probe import probe_registry

        probe_registry(stack.registry)
    flavor.check(stack, flavor.settings_model.model_validate(stack.settings))


def describe(stack: StackRecord, *, active: str | None = None) -> dict[str, Any]:
    """What `stack show --json` prints: every setting, defaults included."""
    try:
        flavor = load_flavor(stack.orchestrator)
        settings = flavor.settings_model.model_validate(stack.settings).model_dump(mode="json")
        schema = {
            key: {
                "description": f.description or "",
                "required": f.is_required(),
                "set": key in stack.settings,
            }
            for key, f in flavor.settings_model.model_fields.items()
        }
        builder = stack.builder
    except (ConfigurationError, KitaruUsageError) as exc:
        settings, schema, builder = dict(stack.settings), {}, stack.builder
        settings["_error"] = str(exc)
    return {
        "name": stack.name,
        "active": stack.name == active,
        "built_in": stack.name == LOCAL,
        "orchestrator": stack.orchestrator,
        "artifact_store": stack.artifact_store,
        "journal": stack.journal or "(the journal it is registered in)",
        "registry": stack.registry,
        "builder": builder,
        "settings": settings,
        "schema": schema,
    }
