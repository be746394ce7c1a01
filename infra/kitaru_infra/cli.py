"""Command bodies for `kitaru stack preview / provision / destroy`, and a Typer sub-app.

The `run_*` functions take what a registered stack knows (its flavor, name and settings)
so the `kitaru stack ...` commands only look the stack up and call them. The Typer app
(`app`) drives the same functions from `--set key=value` options, without a registered
stack; mount it with `root.add_typer(app, name="infra")` or run `python -m kitaru_infra`.
Nothing here imports Pulumi (or builds a pydantic model) until a command runs, so
mounting the app costs the `kitaru` command line no start-up time.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from kitaru import KitaruError, KitaruUsageError, NotFoundError
from kitaru.cli._output import emit_json, table
from kitaru_infra._flavors import Flavor, parse_flavor

if TYPE_CHECKING:
    from kitaru_infra._automation import PreviewResult
    from kitaru_infra._outputs import StackSettings

app = typer.Typer(
    name="infra",
    help="Create the cloud resources a stack needs (bucket, registry, identities, compute) "
    "with Pulumi: preview what would change, provision, destroy. Needs the Pulumi CLI "
    'and the flavor\'s extra, e.g. pip install "kitaru[aws]".',
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

FLAVOR_ARG = typer.Argument(
    ..., help="Stack flavor: aws_batch, gcp_cloud_run, azure_container_apps or kubernetes."
)
NAME_OPT = typer.Option(
    ..., "--name", "-n", help="Stack name; names the Pulumi stack that holds the state."
)
SET_OPT = typer.Option(
    None,
    "--set",
    "-s",
    help="A setting as key=value (JSON values allowed: --set max_vcpus=32, "
    "--set 'subnet_ids=[\"subnet-1\"]'). `settings FLAVOR` lists them.",
)
BACKEND_OPT = typer.Option(
    None,
    "--backend",
    help="Pulumi state backend URL (s3://, gs://, azblob://, file://, Pulumi Cloud). "
    "Default: a local file backend under $KITARU_HOME/pulumi.",
)
JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts.")


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """`key=value` pairs as settings; a value that parses as JSON is used as JSON."""
    settings: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise KitaruUsageError(f"--set {pair!r} is not key=value (e.g. --set region=eu-west-1)")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        settings[key.strip()] = value
    return settings


def _progress(line: str) -> None:
    # Engine progress goes to stderr so that stdout stays parseable with --json.
    sys.stderr.write(line if line.endswith("\n") else line + "\n")


def run_preview(
    flavor: str,
    stack_name: str,
    settings: Mapping[str, Any],
    *,
    backend_url: str | None = None,
    as_json: bool = False,
) -> PreviewResult:
    """`kitaru stack preview NAME`: print what provisioning would change."""
    from kitaru_infra._automation import preview
    from kitaru_infra._config import config_from_settings

    config = config_from_settings(flavor, settings)
    result = preview(
        flavor, stack_name, config, backend_url, on_output=None if as_json else _progress
    )
    if as_json:
        emit_json(result.to_dict())
        return result
    if result.steps:
        table(["op", "type", "resource"], [[s.op, s.type, s.name] for s in result.steps])
    summary = ", ".join(f"{n} to {op}" for op, n in sorted(result.changes.items()) if n)
    print(f"\n{stack_name}: {summary or 'no changes'}")
    return result


def run_provision(
    flavor: str,
    stack_name: str,
    settings: Mapping[str, Any],
    *,
    backend_url: str | None = None,
    as_json: bool = False,
) -> StackSettings:
    """`kitaru stack provision NAME`: create or update the infrastructure and return the
    settings to write into the stack."""
    from kitaru_infra._automation import provision
    from kitaru_infra._config import config_from_settings
    from kitaru_infra._outputs import stack_settings

    config = config_from_settings(flavor, settings)
    outputs = provision(flavor, stack_name, config, backend_url, on_output=_progress)
    result = stack_settings(flavor, outputs, config)
    if as_json:
        emit_json({"stack": stack_name, **result.as_dict(), "outputs": outputs})
    else:
        print(f"\n{stack_name} is provisioned; its settings:")
        table(["setting", "value"], [[k, _show(v)] for k, v in result.as_dict().items()])
    return result


def run_destroy(
    flavor: str,
    stack_name: str,
    settings: Mapping[str, Any],
    *,
    backend_url: str | None = None,
    as_json: bool = False,
) -> None:
    """`kitaru stack destroy NAME`: delete what provisioning created. Ask before calling."""
    from kitaru_infra._automation import destroy
    from kitaru_infra._config import config_from_settings

    config = config_from_settings(flavor, settings)
    destroy(flavor, stack_name, config, backend_url, on_output=_progress)
    if as_json:
        emit_json({"stack": stack_name, "destroyed": True})
    else:
        print(f"{stack_name}: infrastructure destroyed")


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _checked(flavor: str, sets: list[str] | None) -> tuple[Flavor, dict[str, Any]]:
    from kitaru_infra._config import config_for

    parsed = parse_flavor(flavor)
    settings = parse_sets(sets)
    config_for(parsed, settings)  # unknown or bad settings fail here, naming the field
    return parsed, settings


@app.command("preview")
def preview_cmd(
    flavor: str = FLAVOR_ARG,
    name: str = NAME_OPT,
    sets: list[str] | None = SET_OPT,
    backend: str | None = BACKEND_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Show what `provision` would create, change or delete. Changes nothing."""
    parsed, settings = _checked(flavor, sets)
    run_preview(parsed.value, name, settings, backend_url=backend, as_json=as_json)


@app.command("provision")
def provision_cmd(
    flavor: str = FLAVOR_ARG,
    name: str = NAME_OPT,
    sets: list[str] | None = SET_OPT,
    backend: str | None = BACKEND_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Create or update the infrastructure and print the stack settings it produced."""
    parsed, settings = _checked(flavor, sets)
    run_provision(parsed.value, name, settings, backend_url=backend, as_json=as_json)


@app.command("destroy")
def destroy_cmd(
    flavor: str = FLAVOR_ARG,
    name: str = NAME_OPT,
    sets: list[str] | None = SET_OPT,
    backend: str | None = BACKEND_OPT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    as_json: bool = JSON_OPT,
) -> None:
    """Delete everything `provision` created for the stack. The bucket and registry are
    only deleted when empty unless the stack was provisioned with force_destroy=true."""
    parsed, settings = _checked(flavor, sets)
    if not yes:
        if not sys.stdin.isatty():
            raise KitaruUsageError(f"destroying {name!r} needs confirmation; pass --yes")
        typer.confirm(f"Destroy the {parsed} infrastructure of stack {name!r}?", abort=True)
    run_destroy(parsed.value, name, settings, backend_url=backend, as_json=as_json)


@app.command("settings")
def settings_cmd(flavor: str = FLAVOR_ARG, as_json: bool = JSON_OPT) -> None:
    """List the settings a flavor's infrastructure takes (with defaults) and the
    outputs it exports."""
    from kitaru_infra._config import CONFIG_MODELS
    from kitaru_infra._outputs import OUTPUTS

    parsed = parse_flavor(flavor)
    model = CONFIG_MODELS[parsed]
    fields = [
        {
            "setting": key,
            "default": None if info.is_required() else info.get_default(call_default_factory=True),
            "required": info.is_required(),
            "description": info.description or "",
        }
        for key, info in model.model_fields.items()
    ]
    if as_json:
        emit_json({"flavor": parsed.value, "settings": fields, "outputs": list(OUTPUTS[parsed])})
        return
    table(
        ["setting", "default", "description"],
        [
            [f["setting"], "(required)" if f["required"] else _show(f["default"]), f["description"]]
            for f in fields
        ],
    )
    print(f"\noutputs: {', '.join(OUTPUTS[parsed])}")


def main(argv: list[str] | None = None) -> int:
    """Run the app with Kitaru's exit codes: 2 for bad input, 1 for failures."""
    try:
        app(args=argv, prog_name="python -m kitaru_infra")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except (NotFoundError, KitaruUsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KitaruError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
