"""`kitaru stack preview / provision / destroy`: a stack's cloud infrastructure, with
Pulumi (through the flavor's `kitaru.infra` program). Mounted on the `stack` sub-app."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from kitaru.cli._output import emit_json, table

FLAVOR_OPT = typer.Option(
    None,
    "--flavor",
    "-f",
    help="For a stack that does not exist yet: aws_batch, gcp_cloud_run, "
    "azure_container_apps or kubernetes. A registered stack has its own.",
)
SET_OPT = typer.Option(
    [],
    "--set",
    help="KEY=VALUE, repeatable. Infrastructure settings (region, max_vcpus, "
    "name_prefix...; JSON values allowed) and stack settings (base_image, "
    "environment.NAME...) alike; `kitaru stack flavors FLAVOR` lists both. Kept in the "
    "stack, so later commands need only the changes.",
)
BACKEND_OPT = typer.Option(
    None,
    "--backend",
    help="Pulumi state backend: s3://bucket/prefix, gs://..., azblob://..., file://..., or "
    "Pulumi Cloud. Default: a file backend under $KITARU_HOME/pulumi. Remembered by the "
    "stack.",
)
JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")


def _progress(line: str) -> None:
    # Engine progress goes to stderr so that stdout stays parseable with --json.
    sys.stderr.write(line if line.endswith("\n") else line + "\n")


def _journal() -> Any:
    from kitaru.journal import current_journal

    return current_journal()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def preview(
    name: str = typer.Argument(..., help="Stack name (registered, or to be provisioned)."),
    flavor: str | None = FLAVOR_OPT,
    set_: list[str] = SET_OPT,
    backend: str | None = BACKEND_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show what `kitaru stack provision NAME` would create, change or delete, changing
    nothing (also the stack). Needs the Pulumi CLI and the flavor's extra.

    Example: `kitaru stack preview prod --flavor aws_batch --set region=eu-west-1`
    """
    from kitaru.stacks import _provision

    plan = _provision.plan(_journal(), name, flavor=flavor, sets=set_, backend=backend)
    result = plan.program.preview(plan.name, plan.resolved, plan.backend, _progress)
    if as_json:
        emit_json(result)
        return
    steps = result.get("steps", [])
    if steps:
        table(["op", "type", "resource"], [[s["op"], s["type"], s["name"]] for s in steps])
    changes = result.get("changes", {})
    summary = ", ".join(f"{n} to {op}" for op, n in sorted(changes.items()) if n and op != "same")
    print(f"\n{name}: {summary or 'no changes'}")


def provision(
    name: str = typer.Argument(..., help="Stack name; created if it does not exist."),
    flavor: str | None = FLAVOR_OPT,
    set_: list[str] = SET_OPT,
    backend: str | None = BACKEND_OPT,
    artifact_store: str | None = typer.Option(
        None,
        "--artifact-store",
        "-a",
        help="Only for flavors whose infrastructure makes no bucket (kubernetes).",
    ),
    registry: str | None = typer.Option(
        None, "--registry", help="Only for flavors whose infrastructure makes no registry."
    ),
    journal: str | None = typer.Option(
        None,
        "--journal",
        help="Journal URL the stack's executions use (postgresql://... without password, "
        "or env:VAR holding it). Not needed with a journal secret setting "
        "(journal_secret_arn, journal_secret, journal_url).",
    ),
    use_it: bool = typer.Option(False, "--use", help="Make it the active stack too."),
    as_json: bool = JSON_OPT,
) -> None:
    """Create or update the stack's cloud infrastructure (bucket, registry, identities,
    compute) and write what it made into the stack, creating the stack if needed.

    Everything is checked before the engine runs; nothing is stored unless it succeeds.
    Needs the Pulumi CLI and the flavor's extra (pip install "kitaru\\[aws]").

    Examples:

    - `kitaru stack provision prod --flavor aws_batch --set region=eu-west-1 --journal env:PROD_JOURNAL_URL`
    - `kitaru stack provision prod --set max_vcpus=64`
    """
    from kitaru import stacks
    from kitaru.stacks import _provision

    j = _journal()
    plan = _provision.plan(
        j,
        name,
        flavor=flavor,
        sets=set_,
        backend=backend,
        artifact_store=artifact_store,
        registry=registry,
        journal_url=journal,
        creating=True,
    )
    provisioned = plan.program.provision(plan.name, plan.resolved, plan.backend, _progress)
    record = _provision.save(j, plan, provisioned)
    if use_it:
        stacks.use(j, name)
    view = stacks.describe(record, active=stacks.active_name(j)[0])
    if as_json:
        emit_json(view)
        return
    verb = "updated" if plan.existing is not None else "created"
    print(f"\n{name}: infrastructure provisioned, stack {verb} ({record.orchestrator})")
    rows = [
        [key.replace("_", " "), view[key]]
        for key in ("artifact_store", "registry", "journal")
        if view[key] is not None
    ]
    rows += [[k, _text(v)] for k, v in provisioned.settings.items()]
    table(["setting", "value"], rows)
    facts = {
        k: v
        for k, v in provisioned.outputs.items()
        if k not in provisioned.settings and v is not None
    }
    if facts:
        print("\noutputs (for you; see docs/infrastructure.md for the permissions to grant):")
        table(["output", "value"], [[k, _text(v)] for k, v in facts.items()])
    note = _provision.environment_note(record)
    if note:
        print(f"\nnote: {note}")
    if not use_it:
        print(f"\nuse it with: kitaru stack use {name}  (or KITARU_STACK={name})")


def destroy(
    name: str = typer.Argument(..., help="Stack name."),
    flavor: str | None = FLAVOR_OPT,
    set_: list[str] = SET_OPT,
    backend: str | None = BACKEND_OPT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(
        False, "--force", help="Even if executions on the stack are not finished."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Delete everything `provision` created for the stack, then the stack itself (it
    could not run anything without it). A bucket that still holds artifacts and a
    registry that still holds images stop it unless provisioned with
    force_destroy=true. For a stack whose first provision failed half-way, pass the same
    --flavor and --set as that provision.

    Example: `kitaru stack destroy prod --yes`
    """
    from kitaru import stacks
    from kitaru._errors import KitaruUsageError
    from kitaru.stacks import _provision

    j = _journal()
    plan = _provision.plan(j, name, flavor=flavor, sets=set_, backend=backend)
    if plan.existing is not None and not force:
        stacks.refuse_unfinished(j, name)
    if not yes:
        if not sys.stdin.isatty():
            raise KitaruUsageError(f"destroying stack {name!r} needs confirmation; pass --yes")
        typer.confirm(
            f"Destroy the {plan.flavor} infrastructure of stack {name!r}"
            + (" and delete the stack?" if plan.existing is not None else "?"),
            abort=True,
        )
    plan.program.destroy(plan.name, plan.resolved, plan.backend, _progress)
    deleted = _provision.forget(j, plan)
    again = _provision.command(plan, "provision")
    if as_json:
        emit_json({"stack": name, "destroyed": True, "deleted": deleted, "provision_again": again})
        return
    print(f"{name}: infrastructure destroyed" + ("; stack deleted" if deleted else ""))
    print(f"provision it again with: {again}")
