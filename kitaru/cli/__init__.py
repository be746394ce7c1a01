"""The `kitaru` command line: one Typer sub-app per noun.

Every error reaches the user as one line, `error: what is wrong; what to do`, with the
exit code the README states: 0 success; 1 failure (the execution failed, a journal,
store or server that is set up cannot be used); 2 bad input (an unknown or malformed id,
invalid JSON or value, misuse, a configuration that cannot work, a missing extra).
Tracebacks are for bug reports: `KITARU_DEBUG=1` shows them.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import typer

from kitaru._version import __version__

# Each noun's sub-app and each top-level command, in the order `kitaru --help` lists
# them: (module, name). A command line imports only the module of the noun it names
# (`kitaru executions list` never loads the server's or the stacks' commands); help, an
# unknown command and shell completion get them all.
SUB_APPS = {
    "executions": ("kitaru.cli._executions", "app"),
    "artifacts": ("kitaru.cli._artifacts", "app"),
    "model": ("kitaru.cli._model", "app"),
    "server": ("kitaru.cli._server", "app"),
    "stack": ("kitaru.cli._stack", "app"),
    "deployments": ("kitaru.cli._deployments", "app"),
    "queues": ("kitaru.cli._worker", "queues_app"),
    "schedules": ("kitaru.cli._schedules", "app"),
    "mcp": ("kitaru.cli._mcp", "app"),
}
COMMANDS = {
    "worker": ("kitaru.cli._worker", "worker_command"),
    "deploy": ("kitaru.cli._deploy", "deploy_command"),
    "doctor": ("kitaru.cli._doctor", "doctor_command"),
    "gc": ("kitaru.cli._gc", "gc_command"),
}
# Commands that live under `executions` but are written next to what they share code with.
EXECUTIONS_EXTRA = {
    "export": ("kitaru.cli._portable", "export_command"),
    "import": ("kitaru.cli._portable", "import_command"),
    "delete": ("kitaru.cli._gc", "delete_command"),
}


def _load(where: tuple[str, str]) -> Any:
    return getattr(importlib.import_module(where[0]), where[1])


def build(only: str | None = None) -> typer.Typer:
    """The `kitaru` app: every noun and command, or with `only` just that one."""
    # Help text is Markdown, here and in every sub-app: a docstring's single line breaks
    # are soft (rich reflows them to the terminal), a blank line starts a paragraph, and
    # `code` and "- " lists render. Typer's default "rich" mode would print the line
    # breaks of every paragraph but the first, and of each summary in a group's command
    # table.
    root = typer.Typer(
        rich_markup_mode="markdown",
        name="kitaru",
        help="Kitaru: durable executions for Python agents. Inspect, resume, replay and "
        "answer executions; everything is also available from Python "
        "(kitaru.KitaruClient).\n\nExample: `kitaru executions list --status waiting`",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    for noun, where in SUB_APPS.items():
        if only is not None and noun != only:
            continue
        sub = _load(where)
        if noun == "executions":
            for name, extra in EXECUTIONS_EXTRA.items():
                if not any(c.name == name for c in sub.registered_commands):
                    sub.command(name)(_load(extra))
        root.add_typer(sub, name=noun)
    for name, where in COMMANDS.items():
        if only is None or name == only:
            root.command(name)(_load(where))
    root.command("run-execution", hidden=True)(_run_execution)
    root.callback()(_root)
    return root


def _run_execution(exec_id: str = typer.Argument(..., help="Execution id (kx_...).")) -> None:
    """What orchestrators run: take a queued execution's lease and drive it here."""
    from kitaru.stacks._entrypoint import run_execution

    raise typer.Exit(run_execution(exec_id))


def _version(value: bool) -> None:
    if value:
        print(f"kitaru {__version__}")
        raise typer.Exit()


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


def _named(args: list[str]) -> str | None:
    """The noun or command a command line names, if it is one `build` knows apart."""
    first = next((a for a in args if not a.startswith("-")), None)
    return first if first in SUB_APPS or first in COMMANDS else None


def __getattr__(name: str) -> Any:
    # `kitaru.cli.app`, the whole app (the help tests walk it), built on first use.
    if name == "app":
        whole = globals()["app"] = build()
        return whole
    raise AttributeError(f"module 'kitaru.cli' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every error into one line and an exit code."""
    from kitaru._errors import (
        InvalidConfigurationError,
        KitaruError,
        KitaruUsageError,
        NotFoundError,
        debugging,
    )

    args = sys.argv[1:] if argv is None else argv
    try:
        code = build(_named(args))(args=args, prog_name="kitaru", standalone_mode=False)
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
