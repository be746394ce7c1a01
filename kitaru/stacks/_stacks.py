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
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from kitaru import _config
from kitaru._errors import ConfigurationError, InvalidInputError, KitaruUsageError, NotFoundError
from kitaru.journal import Journal, StackRecord
from kitaru.stacks import _secrets
from kitaru.stacks._flavor import StackFlavor, find_flavor, load_flavor
from kitaru.stacks._resolve import (  # re-exported: the CLI and tests use them from here
    ACTIVE_SETTING,
    LOCAL,
    active_name,
    chosen_name,
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
    "chosen_name",
    "delete",
    "describe",
    "get_stack",
    "journal_url_for",
    "list_stacks",
    "local_stack",
    "names",
    "refuse_unfinished",
    "register",
    "resolve",
    "use",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def use(journal: Journal, name: str) -> StackRecord:
    stack = get_stack(journal, name)
    journal.set_setting(ACTIVE_SETTING, None if name == LOCAL else name)
    return stack


def refuse_unfinished(journal: Journal, name: str) -> None:
    """Refuse to take away a stack that executions still need to resume on."""
    busy = [
        e.exec_id
        for status in ("queued", "running", "waiting")
        for e in journal.list_executions(status=status, limit=10000)
        if e.stack == name
    ]
    if busy:
        raise KitaruUsageError(
            f"stack {name!r} has executions that are not finished ({', '.join(busy[:5])}); "
            "they resume on it, so cancel them or let them end first (or pass --force)"
        )


def delete(journal: Journal, name: str, *, force: bool = False) -> None:
    """Delete a registered stack. Refused while executions on it are unfinished (unless
    `force`), since resuming them needs it. Deleting the active stack makes `local`
    active again."""
    if name == LOCAL:
        raise KitaruUsageError("the local stack is built in and cannot be deleted")
    get_stack(journal, name)
    if not force:
        refuse_unfinished(journal, name)
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
    settings: Mapping[str, Any] | None = None,
    replace: bool = False,
    check: bool = True,
) -> StackRecord:
    """Validate everything a stack names and store it; nothing is stored on an error.

    `settings` are the flavor's settings as given (`--set` values through `parse_sets`,
    or JSON from the server's API). Input that cannot work raises InvalidInputError;
    a name that is taken raises KitaruUsageError; with `check`, a journal, bucket,
    registry or platform that does not answer raises ConfigurationError.
    """
    if name == LOCAL:
        raise KitaruUsageError("the name 'local' belongs to the built-in stack; pick another")
    if not _NAME.match(name):
        raise InvalidInputError(
            f"stack name {name!r} is not valid; use lowercase letters, digits, '-' and '_'"
        )
    if not replace and journal.get_stack(name) is not None:
        raise KitaruUsageError(
            f"stack {name!r} already exists; pass --replace to overwrite it, or delete it "
            f"first: kitaru stack delete {name}"
        )
    try:
        flavor = find_flavor(orchestrator)
    except NotFoundError as exc:
        raise InvalidInputError(str(exc)) from None
    values = validate_settings(flavor, settings or {})
    if orchestrator != "local" or values.get("mode") == "subprocess":
        from kitaru.stacks import _plugins

        # The implementation and its SDK must be installed, or nothing could run on it.
        _plugins.load("kitaru.orchestrators", orchestrator)
    _check_store_uri(artifact_store)
    if journal_url is not None:
        _check_journal_url(journal_url)
    effective_journal = journal_url or _config.journal_url()
    if flavor.needs_network_journal and _scheme(_plain_url(effective_journal)) == "sqlite":
        raise InvalidInputError(
            f"--journal: the {orchestrator} orchestrator runs executions where the SQLite "
            f"journal {effective_journal} cannot be opened; pass a shared journal, e.g. "
            "--journal postgresql://user@host:5432/kitaru (keep the password out of it: "
            "--set secret_environment.PGPASSWORD=env:PGPASSWORD, or --journal env:VAR_NAME)"
        )
    chosen_builder = builder or flavor.default_builder
    if builder is not None:
        if flavor.default_builder is None:
            raise InvalidInputError(
                f"--builder: the {orchestrator} orchestrator runs the project as it is and "
                "builds no image; leave --builder out"
            )
        from kitaru.stacks import _plugins

        try:
            _plugins.load("kitaru.builders", builder)
        except KitaruUsageError as exc:  # an unknown name: bad input, like the flavor's
            raise InvalidInputError(f"--builder: {exc}") from None
    if flavor.needs_registry and not registry:
        raise InvalidInputError(
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


def parse_sets(items: list[str]) -> dict[str, Any]:
    """`--set key=value` (and `--set map.key=value`) into a dict of raw values."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(f"--set expects KEY=VALUE, got {item!r}")
        head, dot, sub = key.partition(".")
        if dot:
            bucket = out.setdefault(head, {})
            if not isinstance(bucket, dict):
                raise InvalidInputError(f"--set {head} is given both as a value and as a map")
            bucket[sub] = value
        else:
            out[key] = _value(value)
    return out


def _value(raw: str) -> Any:
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--set value {raw!r} is not valid JSON: {exc.msg}") from None
    return raw


def validate_settings(flavor: StackFlavor, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as stored: checked against the flavor's schema and the secret rules;
    only the ones given are kept (the rest are the flavor's defaults)."""
    fields = flavor.settings_model.model_fields
    for key in raw:
        if key not in fields:
            raise InvalidInputError(
                f"--set {key}: the {flavor.name} stack has no setting {key!r}; its settings: "
                f"{', '.join(fields)} (see: kitaru stack flavors {flavor.name})"
            )
    _secrets.check_settings(raw)
    try:
        validated: BaseModel = flavor.settings_model.model_validate(dict(raw))
    except ValidationError as exc:
        raise InvalidInputError(_explain(flavor, exc)) from None
    return validated.model_dump(mode="json", exclude_unset=True)


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
        raise InvalidInputError(
            f"--artifact-store {uri!r} is not a valid artifact store URI; use one of "
            f"{known} (e.g. s3://bucket/prefix or file:///path)"
        )
    _secrets.reject_plain_secret("artifact_store", uri)


def _check_journal_url(url: str) -> None:
    if _secrets.is_reference(url):
        ref = _secrets.SecretRef.parse(url, what="--journal")
        if ref.key is not None and ref.kind == "env":
            raise InvalidInputError(f"--journal {url!r}: env references take no #key")
        return
    if _scheme(url) not in ("sqlite", "postgresql", "postgres"):
        raise InvalidInputError(
            f"--journal {url!r} is not a journal URL; use postgresql://user@host:5432/db, "
            "sqlite:///path/journal.db, or env:VAR_NAME holding the URL"
        )
    if urlparse(url).password:
        raise InvalidInputError(
            "--journal contains a password, and secrets are never stored in plain text; "
            "put the URL in an environment variable and pass --journal env:VAR_NAME, or "
            "leave the password out and --set secret_environment.PGPASSWORD=env:PGPASSWORD"
        )


def _check_registry_uri(uri: str) -> None:
    if "://" in uri or not uri or uri.startswith("/") or " " in uri:
        raise InvalidInputError(
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
