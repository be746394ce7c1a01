"""The `kitaru` command line: one Typer sub-app per noun.

Every error reaches the user as one line, `error: what is wrong; what to do`, with the
exit code the README states: 0 success; 1 failure (the execution failed, a journal,
store or server that is set up cannot be used); 2 bad input (an unknown or malformed id,
invalid JSON or value, misuse, a configuration that cannot work, a missing extra).
Tracebacks are for bug reports: `KITARU_DEBUG=1` shows them.
"""

from __future__ import annotations

import sys

import typer

from kitaru._version import __version__
from kitaru.cli._artifacts import app as artifacts_app
from kitaru.cli._deploy import deploy_command
from kitaru.cli._deployments import app as deployments_app
from kitaru.cli._doctor import doctor_command
from kitaru.cli._executions import app as executions_app
from kitaru.cli._gc import delete_command, gc_command
from kitaru.cli._mcp import app as mcp_app
from kitaru.cli._model import app as model_app
from kitaru.cli._portable import export_command, import_command
from kitaru.cli._schedules import app as schedules_app
from kitaru.cli._server import app as server_app
from kitaru.cli._stack import app as stack_app
from kitaru.cli._worker import queues_app, worker_command

# Help text is Markdown, here and in every sub-app: a docstring's single line breaks are
# soft (rich reflows them to the terminal), a blank line starts a paragraph, and `code`
# and "- " lists render. Typer's default "rich" mode would print the line breaks of every
# paragraph but the first, and of each summary in a group's command table.
app = typer.Typer(
    rich_markup_mode="markdown",
    name="kitaru",
    help="Kitaru: durable executions for Python agents. Inspect, resume, replay and answer "
    "executions; everything is also available from Python (kitaru.KitaruClient).\n\n"
    "Example: `kitaru executions list --status waiting`",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
executions_app.command("export")(export_command)
executions_app.command("import")(import_command)
app.add_typer(executions_app, name="executions")
app.add_typer(artifacts_app, name="artifacts")
app.add_typer(model_app, name="model")
app.add_typer(server_app, name="server")
app.add_typer(stack_app, name="stack")
app.add_typer(deployments_app, name="deployments")
app.add_typer(queues_app, name="queues")
app.add_typer(schedules_app, name="schedules")
app.add_typer(mcp_app, name="mcp")
app.command("worker")(worker_command)
app.command("deploy")(deploy_command)
app.command("doctor")(doctor_command)
app.command("gc")(gc_command)
executions_app.command("delete")(delete_command)


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
        False,
        "--version",
        "-V",
        help="Print the version and exit.",
        callback=_version,
        is_eager=True,
    ),
) -> None:
    """Kitaru: durable executions for Python agents."""


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every error into one line and an exit code."""
    from kitaru._errors import (
        InvalidConfigurationError,
        KitaruError,
        KitaruUsageError,
        NotFoundError,
        debugging,
    )

    try:
        code = app(args=argv, prog_name="kitaru", standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except typer.Abort:
        return _fail("aborted", 1)
    except (NotFoundError, KitaruUsageError, InvalidConfigurationError) as exc:
        return _fail(str(exc), 2)
    except KitaruError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _is_usage_error(exc):
            # Typer's parser (its own copy of click): a wrong option, a missing argument.
            where = getattr(getattr(exc, "ctx", None), "command_path", None) or "kitaru"
            message = exc.format_message()  # type: ignore[attr-defined]
            if not message:  # `kitaru executions` alone: the help was the answer
                return int(exc.exit_code)  # type: ignore[attr-defined]
            if getattr(exc, "ctx", None) is not None:
                message += f" (see: {where} --help)"
            return _fail(message, exc.exit_code)  # type: ignore[attr-defined]
        # Not an error Kitaru raises on purpose: a bug here or in a library, or the
        # system refusing something. The message still fits one line.
        if debugging():
            raise
        return _fail(
            f"{type(exc).__name__}: {exc} (unexpected; run again with KITARU_DEBUG=1 for the "
            "traceback to report it)",
            1,
            unexpected=True,
        )
    return code if isinstance(code, int) else 0


def _is_usage_error(exc: Exception) -> bool:
    return callable(getattr(exc, "format_message", None)) and isinstance(
        getattr(exc, "exit_code", None), int
    )


def _fail(message: str, code: int, *, unexpected: bool = False) -> int:
    from kitaru._errors import debugging

    if debugging() and not unexpected and sys.exc_info()[0] is not None:
        import traceback

        traceback.print_exc()
    # One line: a message that carries a multi-line text (a provider's answer, a
    # flow's error) is folded rather than spread over the terminal.
    print("error: " + " ".join(message.split()), file=sys.stderr)
    return code


def run() -> None:
    sys.exit(main())
