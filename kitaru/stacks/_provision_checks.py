"""The checks `kitaru stack preview / provision / destroy` make before the infrastructure
engine runs (kitaru/stacks/_provision.py): which `--set` goes to the program and which
to the stack, the program's inputs parsed and their `env:` references read, the flavor's
settings and the stack's components validated, and the `Plan` they hand the engine. A
typo never costs a half-made stack."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kitaru import _config
from kitaru._errors import KitaruUsageError
from kitaru.journal import StackRecord
from kitaru.stacks import _secrets
from kitaru.stacks import _stacks as stacks
from kitaru.stacks._contracts import InfraProgram
from kitaru.stacks._flavor import StackFlavor

# Settings that provisioning itself keeps in the stack.
INFRA_KEYS = ("infra_inputs", "infra_backend", "infra_outputs")


@dataclass
class Plan:
    """A checked request to preview, provision or destroy a stack's infrastructure."""

    name: str
    flavor: str
    program: InfraProgram
    # The program's settings as the stack keeps them (`env:` references unresolved) and
    # as the program gets them.
    inputs: dict[str, Any]
    resolved: dict[str, Any]
    # Flavor settings given on the command line, and the stack's own fields.
    settings: dict[str, Any] = field(default_factory=dict)
    artifact_store: str | None = None
    registry: str | None = None
    journal: str | None = None
    backend: str | None = None
    existing: StackRecord | None = None


def _merged(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        before = out.get(key)
        out[key] = (
            {**before, **value} if isinstance(value, dict) and isinstance(before, dict) else value
        )
    return out


def _route(
    items: list[str], program: InfraProgram, flavor: StackFlavor
) -> tuple[list[str], list[str]]:
    """Split `--set` items into the program's settings and the stack's flavor settings.

    A key both take (a region, a namespace) goes to both: it means the same thing.
    """
    infra_fields = program.input_fields()
    stack_fields = [k for k in flavor.settings_model.model_fields if k not in INFRA_KEYS]
    provides = program.provides()
    to_infra: list[str] = []
    to_stack: list[str] = []
    for item in items:
        key, sep, _value = item.partition("=")
        top = key.partition(".")[0].strip()
        if not sep or not top:
            raise KitaruUsageError(f"--set expects KEY=VALUE, got {item!r}")
        if top in INFRA_KEYS:
            raise KitaruUsageError(
                f"--set {top}: provisioning keeps {top} itself"
                + ("; choose the state backend with --backend" if top == "infra_backend" else "")
            )
        if top in infra_fields:
            to_infra.append(item)
            if top in stack_fields:
                to_stack.append(item)
        elif top in stack_fields:
            # Maps (the container environment) take the user's entries beside the
            # program's; any other setting the outputs fill in is the program's to set.
            mergeable = flavor.settings_model.model_fields[top].default_factory is dict
            if top in provides and not mergeable:
                raise KitaruUsageError(
                    f"--set {top}: the {flavor.name} infrastructure sets {top} itself; leave "
                    "it out (or register the stack by hand to choose it)"
                )
            to_stack.append(item)
        else:
            raise KitaruUsageError(
                f"--set {top}: neither the {flavor.name} infrastructure nor the stack has a "
                f"setting {top!r}. Infrastructure: {', '.join(infra_fields)}. Stack: "
                f"{', '.join(k for k in stack_fields if k not in provides)} "
                f"(see: kitaru stack flavors {flavor.name})"
            )
    return to_infra, to_stack


def _parse_inputs(items: list[str]) -> dict[str, Any]:
    """`key=value` into the program's settings; a value that parses as JSON is JSON
    (`max_vcpus=32`, `spot=true`, `subnet_ids=["a","b"]`); `labels.team=ml` is a map."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        head, dot, sub = key.strip().partition(".")
        if dot:
            bucket = out.setdefault(head, {})
            if not isinstance(bucket, dict):
                raise KitaruUsageError(f"--set {head} is given both as a value and as a map")
            bucket[sub] = value
        else:
            out[head] = value
    return out


def _resolve_inputs(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The program's settings with `env:` references read here. The stack keeps the
    reference; a value that looks like a secret must be one."""
    resolved: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, str) and value.startswith("env:"):
            ref = _secrets.SecretRef.parse(value, what=f"--set {key}")
            resolved[key] = ref.resolve_env(what=f"--set {key}={value}")
            continue
        if isinstance(value, str) and _secrets.looks_like_secret("", value):
            raise KitaruUsageError(
                f"--set {key}: the value looks like a secret, and the stack keeps these "
                f"settings in plain text; put it in an environment variable and pass "
                f"--set {key}=env:VAR_NAME"
            )
        resolved[key] = value
    return resolved


def _check_settings(flavor: StackFlavor, values: dict[str, Any], provides: frozenset[str]) -> None:
    """Validate flavor settings before anything is created; settings the outputs will
    fill in may be missing."""
    try:
        flavor.settings_model.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "?"
            if err["type"] == "missing" and err["loc"] and str(err["loc"][0]) in provides:
                continue
            if err["type"] == "missing":
                raise KitaruUsageError(
                    f"setting {key!r} is required for a {flavor.name} stack; add --set {key}=..."
                ) from None
            raise KitaruUsageError(
                f"setting {key!r}: {err['msg']}; fix it with --set {key}=..."
            ) from None


def _check_components(
    plan: Plan,
    flavor: StackFlavor,
    artifact_store: str | None,
    registry: str | None,
    journal_url: str | None,
) -> None:
    provides = plan.program.provides()
    existing = plan.existing
    for option, value, key in (
        ("--artifact-store", artifact_store, "artifact_store"),
        ("--registry", registry, "registry"),
    ):
        if value is not None and key in provides:
            raise KitaruUsageError(
                f"{option}: the {plan.flavor} infrastructure creates the stack's "
                f"{key.replace('_', ' ')}; leave {option} out"
            )
    if artifact_store is not None:
        stacks._check_store_uri(artifact_store)
    elif "artifact_store" not in provides and existing is None:
        raise KitaruUsageError(
            f"--artifact-store is required: the {plan.flavor} infrastructure creates no "
            "artifact store; name yours, e.g. --artifact-store s3://my-bucket/kitaru"
        )
    if registry is not None:
        stacks._check_registry_uri(registry)
    elif (
        flavor.needs_registry
        and "registry" not in provides
        and (existing is None or existing.registry is None)
    ):
        raise KitaruUsageError(
            f"--registry is required: the {plan.flavor} infrastructure creates no registry "
            "and the image is pushed there for the platform to pull, e.g. "
            "--registry ghcr.io/acme/kitaru"
        )
    if journal_url is not None:
        stacks._check_journal_url(journal_url)
    effective = (
        journal_url
        or plan.program.journal_reference(plan.resolved)
        or (existing.journal if existing is not None else None)
        or _config.journal_url()
    )
    if flavor.needs_network_journal and stacks._scheme(stacks._plain_url(effective)) == "sqlite":
        raise KitaruUsageError(
            f"--journal: the {plan.flavor} orchestrator runs executions where the SQLite "
            f"journal {effective} cannot be opened; pass a shared journal, e.g. "
            "--journal env:KITARU_PROD_JOURNAL_URL (a variable holding "
            "postgresql://user:password@host:5432/kitaru)"
        )
    plan.artifact_store = artifact_store
    plan.registry = registry
    plan.journal = journal_url
