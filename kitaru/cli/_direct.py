"""Command lines the CLI runs without Typer: the plain forms of `kitaru executions list`
and `kitaru executions get`.

Importing Typer (and its copy of click) and building the app take about 40 ms, most of
what a listing costs; scripts and people poll `executions list` and `get` often. A line
read here names a command in `COMMANDS` followed by its arguments (each a word that does
not start with `-`), exactly as many as it takes, and its options, each at most once, as
`--name value` (a value that does not start with `-`; a number in at most 9 plain
digits) or as the flag itself. The command runs the same function its Typer command
runs.

Any other line (help, `--name=value`, an unknown or repeated option, a value Typer
would convert or reject, shell completion) gets None from `command` and goes to the
Typer app, so help, usage errors and their exit codes stay Typer's.
`tests/test_cli_direct.py` checks these options against the Typer command's.
"""

from __future__ import annotations

import errno
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

# (noun, command) -> (module, function, (argument, ...), {option: (parameter, kind,
# default)}), kind "str", "int range" (0 to LIMIT_MAX) or "flag"; the arguments are
# required strings; the defaults are the Typer command's.
COMMANDS: dict[
    tuple[str, str], tuple[str, str, tuple[str, ...], dict[str, tuple[str, str, Any]]]
] = {
    ("executions", "list"): (
        "kitaru.cli._execution_list",
        "list_executions",
        (),
        {
            "--flow": ("flow", "str", None),
            "--status": ("status", "str", None),
            "--idempotency-key": ("idempotency_key", "str", None),
            "--limit": ("limit", "int range", 50),
            "--json": ("as_json", "flag", False),
        },
    ),
    ("executions", "get"): (
        "kitaru.cli._execution_list",
        "get_execution",
        ("exec_id",),
        {"--json": ("as_json", "flag", False)},
    ),
}


class Aborted(Exception):
    """End of input where the command read some (Typer's `Abort`): `error: aborted`."""


def command(args: list[str]) -> Callable[[], int] | None:
    """The command `args` name, ready to run, or None when Typer has to read the line."""
    if len(args) < 2 or (args[0], args[1]) not in COMMANDS:
        return None
    if "_KITARU_COMPLETE" in os.environ:  # shell completion: Typer answers it
        return None
    module, function, arguments, options = COMMANDS[(args[0], args[1])]
    values = {param: default for param, _, default in options.values()}
    given: list[str] = []
    seen: set[str] = set()
    rest = args[2:]
    while rest:
        option, rest = rest[0], rest[1:]
        if not option.startswith("-"):
            given.append(option)
            continue
        if option not in options or option in seen:
            return None
        seen.add(option)
        param, kind, _ = options[option]
        if kind == "flag":
            values[param] = True
            continue
        if not rest or rest[0].startswith("-"):
            return None
        value, rest = rest[0], rest[1:]
        if kind == "int range":
            # Plain digits, at most 9 of them: within 0 to 1,000,000,000, --limit's range
            # (Typer checks larger numbers and says so).
            if not (value.isascii() and value.isdigit()) or len(value) > 9:
                return None
            values[param] = int(value)
        else:
            values[param] = value
    if len(given) != len(arguments):
        return None
    values.update(zip(arguments, given, strict=True))
    return lambda: _run(module, function, values)


def _run(module: str, function: str, values: dict[str, Any]) -> int:
    """Run the command as Typer's runner would: Ctrl-C exits 130 quietly, end of input
    aborts, a reader that went away (`| head`) ends it with 1 and no traceback."""
    target = getattr(importlib.import_module(module), function)
    try:
        target(**values)
    except KeyboardInterrupt:
        return 130
    except EOFError as exc:
        print(file=sys.stderr)
        raise Aborted from exc
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        # What is still buffered for the closed pipe goes nowhere, without an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return 0
