"""The parts of a stack that a submission uses: its orchestrator and builder, made
from their plugins, and the project a flow is built or run from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitaru import _config, _tracing
from kitaru._errors import KitaruError
from kitaru.journal import StackRecord

if TYPE_CHECKING:
    from kitaru.stacks._contracts import Builder, Orchestrator


def make_orchestrator(stack: StackRecord) -> Orchestrator:
    from kitaru.stacks import _plugins
    from kitaru.stacks._flavor import settings_of

    cls = _plugins.load("kitaru.orchestrators", stack.orchestrator)
    orchestrator: Orchestrator = cls(stack, settings_of(stack))
    return orchestrator


def make_builder(stack: StackRecord) -> Builder:
    from kitaru.stacks import _plugins
    from kitaru.stacks._flavor import settings_of

    cls = _plugins.load("kitaru.builders", stack.builder or "docker")
    builder: Builder = cls(stack, settings_of(stack))
    return builder


def find_project_root(flow: Any) -> Path:
    """The nearest directory above the flow's file with a pyproject.toml."""
    start = Path(flow.flow_file or flow.import_path or os.getcwd()).resolve()
    for directory in [start, *start.parents]:
        if (directory / "pyproject.toml").is_file():
            return directory
    raise KitaruError(
        f"flow {flow.name!r} ({flow.flow_file}) is not inside a project: stacks that run "
        "executions elsewhere build them from the project around the flow; add a "
        "pyproject.toml next to it (`uv init`) listing what it imports"
    )


def run_directory(flow: Any) -> Path:
    """Where a background process on this machine runs a flow: its project when it has
    one, else the directory it was started from (as `python script.py` there would)."""
    try:
        return find_project_root(flow)
    except KitaruError:
        return Path(os.getcwd())


def runtime_extras(stack: StackRecord) -> tuple[str, ...]:
    """The kitaru extras a container needs to open the stack's journal and store."""
    from kitaru.artifacts import _STORES
    from kitaru.stacks._secrets import is_reference

    extras: list[str] = []
    journal = stack.journal or _config.journal_url()
    if is_reference(journal) or journal.startswith(("postgresql:", "postgres:")):
        extras.append("postgres")
    store_extra = _STORES.get(stack.artifact_store.partition("://")[0], ("", "", None))[2]
    if store_extra:
        extras.append(store_extra)
    environment = stack.settings.get("environment") or {}
    if isinstance(environment, dict) and _tracing.ENDPOINT_VARIABLES & set(environment):
        extras.append("otel")  # the stack sends its runs' spans to a collector
    return tuple(extras)


def _repository(stack: StackRecord, project: Path) -> str:
    name = str(stack.settings.get("repository") or _slug(project.name))
    return f"{stack.registry}/{name}" if stack.registry else f"kitaru/{name}"


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return out or "project"
