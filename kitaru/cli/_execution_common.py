"""What every `kitaru executions ...` command shares: the --json and --project options,
the client, and where a flow's own output goes under --json (how an execution's outcome
is printed and turned into the exit code is `_output.finish_execution`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import typer

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")
PROJECT_OPT = typer.Option(
    None,
    "--project",
    help="The flow's project: where its code may be loaded from when the execution comes "
    "from a server (default: the current directory).",
)


def _use_project(project: str | None) -> None:
    """Make `project` the project of this command and of the processes it starts."""
    if project is None:
        return
    import os

    from kitaru._errors import KitaruUsageError

    if not os.path.isdir(project):
        raise KitaruUsageError(f"--project {project}: no such directory")
    os.environ["KITARU_PROJECT"] = os.path.abspath(project)


def _client() -> Any:
    from kitaru.client import KitaruClient

    return KitaruClient()


@contextlib.contextmanager
def _flow_output(as_json: bool) -> Iterator[None]:
    """With --json, what the flow prints goes to stderr so stdout stays one JSON document."""
    if not as_json:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield
