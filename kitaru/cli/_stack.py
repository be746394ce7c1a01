"""`kitaru stack ...`"""

from __future__ import annotations

import sys
from typing import Any

import typer

from kitaru.cli import _stack_infra
from kitaru.cli._output import emit_json, table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Register, choose and inspect stacks: where executions run (this machine, Docker, "
    "Kubernetes, AWS Batch, GCP Cloud Run Jobs, Azure Container Apps). The built-in `local` "
    "stack is the default. `provision` creates a cloud stack's infrastructure and the "
    "stack in one command.\n\n"
    "Example: `kitaru stack register dev-docker -o docker -a file:///srv/kitaru/artifacts`",
    no_args_is_help=True,
)
app.command("preview")(_stack_infra.preview)
app.command("provision")(_stack_infra.provision)
app.command("destroy")(_stack_infra.destroy)

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")


def _journal() -> Any:
    from kitaru.journal import current_journal

    return current_journal()


@app.command()
def register(
    name: str = typer.Argument(..., help="Stack name: lowercase letters, digits, - and _."),
    orchestrator: str = typer.Option(
        ...,
        "--orchestrator",
        "-o",
        help="Flavor: local, docker, kubernetes, aws_batch, gcp_cloud_run, "
        "azure_container_apps (see `kitaru stack flavors`).",
    ),
    artifact_store: str = typer.Option(
        ...,
        "--artifact-store",
        "-a",
        help="Where artifact bytes go: s3://bucket/prefix, gs://..., az://..., file:///path.",
    ),
    journal: str | None = typer.Option(
        None,
        "--journal",
        help="Journal URL for executions on this stack (postgresql://user@host/db, or "
        "env:VAR holding it). Default: the journal the stack is registered in.",
    ),
    registry: str | None = typer.Option(
        None,
        "--registry",
        help="Container registry the image is pushed to: host[:port]/path.",
    ),
    builder: str | None = typer.Option(
        None, "--builder", help="Builder flavor (default: the flavor's own, docker)."
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        help="KEY=VALUE flavor setting, repeatable; maps as KEY.SUB=VALUE. Secrets only as "
        "references: env:VAR_NAME or secret:NAME.",
    ),
    replace: bool = typer.Option(False, "--replace", help="Overwrite a stack of this name."),
    no_check: bool = typer.Option(
        False, "--no-check", help="Do not check that the journal, bucket and registry answer."
    ),
    use_it: bool = typer.Option(False, "--use", help="Make it the active stack too."),
    as_json: bool = JSON_OPT,
) -> None:
    """Register a stack. Its settings are validated against the flavor's schema, and the
    journal, bucket, registry and platform it names are checked to answer.

    Examples:

    - `kitaru stack register dev-docker -o docker -a file:///srv/kitaru/artifacts`
    - `kitaru stack register prod -o aws_batch -a s3://acme-kitaru/artifacts --journal env:PROD_JOURNAL_URL --registry 123456789012.dkr.ecr.eu-west-1.amazonaws.com/kitaru --use`
    """
    from kitaru import stacks

    j = _journal()
    record = stacks.register(
        j,
        name,
        orchestrator=orchestrator,
        artifact_store=artifact_store,
        journal_url=journal,
        registry=registry,
        builder=builder,
        settings=stacks.parse_sets(set_),
        replace=replace,
        check=not no_check,
    )
    if use_it:
        stacks.use(j, name)
    view = stacks.describe(record, active=stacks.active_name(j)[0])
    if as_json:
        emit_json(view)
    else:
        print(
            f"registered stack {name!r} ({orchestrator})"
            + (" and made it active" if use_it else "")
        )
        if not use_it:
            print(f"use it with: kitaru stack use {name}  (or KITARU_STACK={name})")


@app.command()
def use(
    name: str = typer.Argument(..., help="A registered stack, or local."),
    as_json: bool = JSON_OPT,
) -> None:
    """Make a stack the active one for new executions. Executions already started stay
    where they are.

    Example: `kitaru stack use prod`
    """
    import os

    from kitaru import stacks

    j = _journal()
    record = stacks.use(j, name)
    if as_json:
        emit_json(stacks.describe(record, active=name))
        return
    print(f"active stack: {name} ({record.orchestrator})")
    env = os.environ.get("KITARU_STACK")
    if env and env != name:
        print(f"note: KITARU_STACK={env} is set in this shell and takes precedence")


@app.command("list")
def list_(as_json: bool = JSON_OPT) -> None:
    """List stacks; the active one is marked with *.

    Example: `kitaru stack list --json`
    """
    from kitaru import stacks

    j = _journal()
    active, _source = stacks.active_name(j)
    records = stacks.list_stacks(j)
    if as_json:
        emit_json([stacks.describe(r, active=active) for r in records])
        return
    table(
        ["", "stack", "orchestrator", "artifact store", "registry"],
        [
            ["*" if r.name == active else "", r.name, r.orchestrator, r.artifact_store, r.registry]
            for r in records
        ],
    )


@app.command()
def show(
    name: str | None = typer.Argument(None, help="Stack name (default: the active stack)."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show a stack: its components and every setting of its flavor, defaults included.

    Example: `kitaru stack show prod`
    """
    from kitaru import stacks

    j = _journal()
    active, source = stacks.active_name(j)
    record = stacks.get_stack(j, name) if name else stacks.resolve(j)
    view = stacks.describe(record, active=active)
    if as_json:
        emit_json(view)
        return
    marker = f" (active, from {source})" if view["active"] else ""
    print(f"stack          {view['name']}{marker}")
    for key in ("orchestrator", "artifact_store", "journal", "registry", "builder"):
        if view[key] is not None:
            print(f"{key.replace('_', ' '):<14} {view[key]}")
    from kitaru.stacks._provision_checks import INFRA_KEYS

    infra = {k: view["settings"].pop(k) for k in INFRA_KEYS if k in view["settings"]}
    if view["settings"]:
        print()
        rows = []
        for key, value in view["settings"].items():
            info = view["schema"].get(key, {})
            rows.append([key, _text(value), "" if info.get("set") else "default"])
        table(["setting", "value", ""], rows)
    if infra.get("infra_backend") or infra.get("infra_outputs"):
        inputs = " ".join(f"{k}={_text(v)}" for k, v in (infra.get("infra_inputs") or {}).items())
        print(f"\ninfrastructure  kitaru stack provision, state in {infra.get('infra_backend')}")
        print(f"  settings      {inputs or '(defaults)'}")
        # The outputs that are not settings already: facts such as the policy to grant.
        facts = {
            k: v
            for k, v in (infra.get("infra_outputs") or {}).items()
            if v is not None and k not in view["settings"] and k not in view
        }
        if facts:
            table(["output", "value"], [[k, _text(v)] for k, v in facts.items()])


def _text(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


@app.command()
def delete(
    name: str = typer.Argument(..., help="Stack name."),
    force: bool = typer.Option(
        False, "--force", help="Delete even if executions on it are not finished."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Delete a registered stack (the built-in local stack cannot be deleted). Refused
    while executions on it are queued, running or waiting, because resuming them needs it.
    Deleting the active stack makes `local` active again, and says so.

    Example: `kitaru stack delete dev-docker`
    """
    from kitaru import stacks
    from kitaru.stacks._resolve import chosen_name

    journal = _journal()
    was_active = chosen_name(journal) == name
    stacks.delete(journal, name, force=force)
    if as_json:
        emit_json({"deleted": name, "active": chosen_name(journal)})
    else:
        print(f"deleted stack {name!r}")
    if was_active:
        # New executions would otherwise move to another stack without a word.
        print(
            f"note: {name!r} was the active stack; the local stack is active now "
            "(choose another with: kitaru stack use NAME)",
            file=sys.stderr,
        )


@app.command()
def flavors(
    name: str | None = typer.Argument(None, help="A flavor to show the settings of."),
    as_json: bool = JSON_OPT,
) -> None:
    """List installed stack flavors, or the settings schema of one.

    Examples:

    - `kitaru stack flavors`
    - `kitaru stack flavors aws_batch`
    """
    from kitaru import stacks

    names = [name] if name else stacks.installed_flavors()
    out = [stacks.describe_flavor(n, infrastructure=name is not None) for n in names]
    if as_json:
        emit_json(out if name is None else out[0])
        return
    if name is None:
        table(["flavor", "summary"], [[f["flavor"], f["summary"]] for f in out])
        return
    f = out[0]
    print(f"{f['flavor']}: {f['summary']}")
    table(
        ["setting", "required", "default", "description"],
        [
            [
                k,
                "yes" if v["required"] else "",
                "" if v["required"] else _text(v["default"]),
                v["description"],
            ]
            for k, v in f["settings"].items()
        ],
    )
    if f["infrastructure"]:
        print(
            f"\ninfrastructure settings (kitaru stack provision NAME --flavor {f['flavor']} --set ...):"
        )
        table(["setting", "description"], list(f["infrastructure"].items()))
