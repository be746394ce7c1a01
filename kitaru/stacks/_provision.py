"""A stack's infrastructure: what `kitaru stack preview / provision / destroy` do to the
stack registry around the infrastructure program.

The program of a flavor comes from the `kitaru.infra` entry points (kitaru_infra
registers one per cloud flavor). `provision` runs it and writes what it made into the
stack, creating the stack when it does not exist yet; `destroy` deletes the
infrastructure and then the stack, which could not run anything without it.

Everything that can be checked is checked before the engine runs, so a typo never costs
a half-made stack, and nothing is stored until the engine has succeeded.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from kitaru import _config
from kitaru._errors import ConfigurationError, KitaruUsageError, NotFoundError
from kitaru.journal import Journal, StackRecord
from kitaru.stacks import _plugins, _secrets
from kitaru.stacks import _stacks as stacks
from kitaru.stacks._contracts import InfraProgram, ProvisionedStack
from kitaru.stacks._flavor import StackFlavor, load_flavor

# The flavors kitaru_infra has a program for, and the extra that brings it.
INFRA_EXTRAS = {
    "aws_batch": "aws",
    "gcp_cloud_run": "gcp",
    "azure_container_apps": "azure",
    "kubernetes": "kubernetes",
}
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


def infra_program(flavor: str) -> InfraProgram:
    """The infrastructure program of `flavor`, or an error saying what to install."""
    installed = _plugins.installed("kitaru.infra")
    if flavor not in INFRA_EXTRAS and flavor not in installed:
        known = ", ".join(sorted({*INFRA_EXTRAS, *installed}))
        raise KitaruUsageError(
            f"the {flavor} flavor has no infrastructure program to provision (flavors with "
            f"one: {known}); register a {flavor} stack with `kitaru stack register` instead"
        )
    program: InfraProgram = _plugins.load("kitaru.infra", flavor)
    return program


def plan(
    journal: Journal,
    name: str,
    *,
    flavor: str | None = None,
    sets: list[str] | None = None,
    backend: str | None = None,
    artifact_store: str | None = None,
    registry: str | None = None,
    journal_url: str | None = None,
    creating: bool = False,
) -> Plan:
    """Check a request against the stack (if registered), the program and the flavor.

    `creating` is for `provision`: the stack-level fields it will need must be known.
    """
    if name == stacks.LOCAL:
        raise KitaruUsageError("the local stack is built in and has no infrastructure")
    if flavor is not None:
        flavor = flavor.strip().lower().replace("-", "_")
    existing = journal.get_stack(name)
    if existing is None:
        if flavor is None:
            raise NotFoundError(
                f"stack {name!r} does not exist; to create its infrastructure pass --flavor "
                f"({', '.join(INFRA_EXTRAS)}) and its --set settings. Registered stacks: "
                f"{', '.join(stacks.names(journal))}"
            )
        if not stacks._NAME.match(name):
            raise KitaruUsageError(
                f"stack name {name!r} is not valid; use lowercase letters, digits, '-' and '_'"
            )
    elif flavor is not None and flavor != existing.orchestrator:
        raise KitaruUsageError(
            f"--flavor {flavor}: stack {name!r} is a {existing.orchestrator} stack; leave "
            "--flavor out, or pick another name"
        )
    chosen = existing.orchestrator if existing is not None else str(flavor)
    program = infra_program(chosen)
    stack_flavor = load_flavor(chosen)
    if creating:
        # Nothing could run on the stack without its orchestrator's SDK.
        _plugins.load("kitaru.orchestrators", chosen)

    infra_items, setting_items = _route(sets or [], program, stack_flavor)
    current = dict(existing.settings) if existing is not None else {}
    stored = dict(current.get("infra_inputs") or {})
    # A stack registered by hand already names its region, project or namespace: its
    # first infrastructure goes there unless the command says otherwise. Once
    # provisioned, the stored settings are the program's (the outputs wrote the rest).
    shared = (
        {k: v for k, v in current.items() if k in program.input_fields() and k not in INFRA_KEYS}
        if "infra_backend" not in current
        else {}
    )
    inputs = {**shared, **stored, **_parse_inputs(infra_items)}
    resolved = _resolve_inputs(inputs)
    program.check_inputs(resolved)
    given = stacks.parse_sets(setting_items)
    _secrets.check_settings(given)
    _check_settings(stack_flavor, _merged(current, given), program.provides())

    remembered = current.get("infra_backend")
    if backend is not None and remembered is not None and backend != remembered:
        raise KitaruUsageError(
            f"--backend {backend}: the infrastructure state of stack {name!r} is in "
            f"{remembered}; leave --backend out (a new backend would not know what exists)"
        )
    result = Plan(
        name=name,
        flavor=chosen,
        program=program,
        inputs=inputs,
        resolved=resolved,
        settings=given,
        backend=backend or remembered,
        existing=existing,
    )
    if creating:
        _check_components(result, stack_flavor, artifact_store, registry, journal_url)
    return result


def save(journal: Journal, plan: Plan, provisioned: ProvisionedStack) -> StackRecord:
    """Write what provisioning made into the stack (creating it), validated by its flavor."""
    flavor = load_flavor(plan.flavor)
    existing = plan.existing
    # Maps (the container environment) gain the command's and the program's entries,
    # keeping the ones the stack has.
    settings = _merged(dict(existing.settings) if existing is not None else {}, plan.settings)
    settings = _merged(settings, provisioned.settings)
    settings["infra_inputs"] = plan.inputs
    settings["infra_backend"] = plan.backend or plan.program.default_backend_url()
    settings["infra_outputs"] = provisioned.outputs
    try:
        validated = flavor.settings_model.model_validate(settings)
    except ValidationError as exc:
        raise ConfigurationError(
            f"the infrastructure of stack {plan.name!r} was provisioned, but its outputs do "
            f"not fit a {plan.flavor} stack ({stacks._explain(flavor, exc)}); remove it "
            f"with: {command(plan, 'destroy')}"
        ) from None
    artifact_store = (
        provisioned.artifact_store
        or plan.artifact_store
        or (existing.artifact_store if existing is not None else None)
    )
    if artifact_store is None:  # _check_components made sure of it
        raise ConfigurationError(f"stack {plan.name!r} has no artifact store")
    now = time.time()
    record = StackRecord(
        name=plan.name,
        orchestrator=plan.flavor,
        artifact_store=artifact_store,
        journal=plan.journal
        or provisioned.journal
        or (existing.journal if existing is not None else None),
        registry=provisioned.registry
        or plan.registry
        or (existing.registry if existing is not None else None),
        builder=existing.builder if existing is not None else flavor.default_builder,
        settings=validated.model_dump(mode="json", exclude_unset=True),
        created_at=existing.created_at if existing is not None else now,
        updated_at=now,
    )
    journal.put_stack(record, replace=True)
    return record


def forget(journal: Journal, plan: Plan) -> bool:
    """Delete the stack after its infrastructure was destroyed; whether there was one."""
    if plan.existing is None:
        return False
    stacks.delete(journal, plan.name, force=True)  # destroy checked unfinished executions
    return True


def command(plan: Plan, verb: str) -> str:
    """The `kitaru stack VERB` command for this stack with the same settings (to
    provision it again after `destroy`, or to remove a half-made one)."""
    words = ["kitaru", "stack", verb, plan.name, "--flavor", plan.flavor]
    for key, value in plan.inputs.items():
        text = value if isinstance(value, str) else json.dumps(value)
        words += ["--set", f"{key}={text}"]
    if plan.backend is not None:
        words += ["--backend", plan.backend]
    if verb == "destroy":
        words.append("--yes")
    return " ".join(shlex.quote(w) for w in words)


# -- checks --------------------------------------------------------------------------------


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


def environment_note(record: StackRecord) -> str | None:
    """What this machine needs before it can submit to the stack, if anything."""
    if record.journal is not None and _secrets.is_reference(record.journal):
        ref = _secrets.SecretRef.parse(record.journal)
        if ref.kind == "secret" and not os.environ.get("KITARU_JOURNAL_URL"):
            return (
                f"the stack's containers read the journal URL from {ref}; set "
                "KITARU_JOURNAL_URL to the same journal where you run flows"
            )
    return None
