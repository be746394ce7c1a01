"""A stack's infrastructure: what `kitaru stack preview / provision / destroy` do to the
stack registry around the infrastructure program.

The program of a flavor comes from the `kitaru.infra` entry points (kitaru_infra
registers one per cloud flavor). `provision` runs it and writes what it made into the
stack, creating the stack when it does not exist yet; `destroy` deletes the
infrastructure and then the stack, which could not run anything without it.

Everything that can be checked is checked before the engine runs
(kitaru/stacks/_provision_checks.py), so a typo never costs a half-made stack, and
nothing is stored until the engine has succeeded.
"""

from __future__ import annotations

import json
import os
import shlex
import time

from pydantic import ValidationError

from kitaru._errors import ConfigurationError, KitaruUsageError, NotFoundError
from kitaru.journal import Journal, StackRecord
from kitaru.stacks import _plugins, _secrets
from kitaru.stacks import _stacks as stacks
from kitaru.stacks._contracts import InfraProgram, ProvisionedStack
from kitaru.stacks._flavor import load_flavor
from kitaru.stacks._provision_checks import (
    INFRA_KEYS,
    Plan,
    _check_components,
    _check_settings,
    _merged,
    _parse_inputs,
    _resolve_inputs,
    _route,
)

# The flavors kitaru_infra has a program for, and the extra that brings it.
INFRA_EXTRAS = {
    "aws_batch": "aws",
    "gcp_cloud_run": "gcp",
    "azure_container_apps": "azure",
    "kubernetes": "kubernetes",
}


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
