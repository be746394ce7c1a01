"""The `kitaru` command line: one Typer sub-app per noun."""

from __future__ import annotations

import sys

import typer

from kitaru._version import __version__
from kitaru.cli._artifacts import app as artifacts_app
from kitaru.cli._deployments import app as deployments_app
from kitaru.cli._deployments import deploy_command
from kitaru.cli._executions import app as executions_app
from kitaru.cli._model import app as model_app
from kitaru.cli._server import app as server_app
from kitaru.cli._stack import app as stack_app

app = typer.Typer(
    name="kitaru",
    help="Kitaru: durable executions for Python agents. Inspect, resume, replay and answer "
    "executions; everything is also available from Python (kitaru.KitaruClient).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(executions_app, name="executions")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(model_app, name="model")
app.add_typer(server_app, name="server")
app.add_typer(stack_app, name="stack")
app.add_typer(deployments_app, name="deployments")
app.command("deploy")(deploy_command)


@app.command("run-execution", hidden=True)
def _run_execution(exec_id: str = typer.Argument(..., help="Execution id (kx_...).")) -> None:
    """What orchestrators run: take a queued execution's lease and drive it here."""
    from kitaru.stacks._entrypoint import run_execution

    raise typer.Exit(run_execution(exec_id))


def _version(value: bool) -> None:
    if value:
        print(f"kitaru {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", callback=_version, is_eager=True
    ),
) -> None:
    """Kitaru: durable executions for Python agents."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn Kitaru errors into one-line messages and exit codes.

    Exit codes: 0 success, 1 failure (a failed execution, a store that cannot be used),
    2 bad input (unknown id, invalid JSON, a wrong option).
    """
    from kitaru._errors import KitaruError, KitaruUsageError, NotFoundError

    try:
        app(args=argv, prog_name="kitaru")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except (NotFoundError, KitaruUsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KitaruError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    sys.exit(main())
