"""The `kitaru` Typer app: one sub-app per noun, built for the command line it runs."""

from __future__ import annotations

import importlib
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


def named(args: list[str]) -> str | None:
    """The noun or command a command line names, if it is one `build` knows apart."""
    first = next((a for a in args if not a.startswith("-")), None)
    return first if first in SUB_APPS or first in COMMANDS else None
