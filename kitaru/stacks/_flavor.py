"""Stack flavors: the settings schema of each orchestrator and what a stack of it needs.

The `local` flavor is built in (so the `local` stack works with nothing else installed);
every other flavor comes from `kitaru_stacks` through the `kitaru.stacks` entry points.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kitaru.journal import StackRecord
from kitaru.stacks import _plugins


class StackFlavor(Protocol):
    name: str
    summary: str
    settings_model: type[BaseModel]
    # The builder that makes the image (None: runs the project as it is on this machine).
    default_builder: str | None
    # Whether images must be pushed to a registry the platform pulls from.
    needs_registry: bool
    # Whether executions run somewhere that cannot open this machine's SQLite file.
    needs_network_journal: bool

    def check(self, stack: StackRecord, settings: Any) -> None:
        """Fail with the setting at fault and the fix unless the platform can be reached."""


class LocalSettings(BaseModel):
    """Run executions on this machine."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["in_process", "subprocess"] = Field(
        "in_process",
        description="in_process: the flow runs in the process that starts it (returns when "
        "it ends or waits); subprocess: each execution runs in its own background "
        "process and `run()` returns at once",
    )
    environment: dict[str, str] = Field(
        default_factory=dict, description="extra environment variables for subprocesses"
    )
    secret_environment: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables from references (env:NAME) for subprocesses",
    )


class LocalFlavor:
    name = "local"
    summary = "this machine: in the starting process, or one background process per execution"
    settings_model: type[BaseModel] = LocalSettings
    default_builder: str | None = None
    needs_registry = False
    needs_network_journal = False

    def check(self, stack: StackRecord, settings: Any) -> None:
        return None


LOCAL_FLAVOR = LocalFlavor()


def load_flavor(name: str) -> StackFlavor:
    if name == "local":
        return LOCAL_FLAVOR
    flavor: StackFlavor = _plugins.load("kitaru.stacks", name)
    return flavor


def installed_flavors() -> list[str]:
    return sorted({"local", *_plugins.installed("kitaru.stacks")})


def settings_of(stack: StackRecord) -> Any:
    """The stack's validated settings object."""
    return load_flavor(stack.orchestrator).settings_model.model_validate(stack.settings)
