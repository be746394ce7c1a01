"""Stack flavors: the settings schema of each orchestrator and what a stack of it needs.

The `local` flavor is built in (so the `local` stack works with nothing else installed);
every other flavor comes from `kitaru_stacks` through the `kitaru.stacks` entry points.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kitaru._errors import KitaruError, NotFoundError
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
        description="in_process: the flow runs in the process that starts it (`run()` "
        "returns when it ends or waits); subprocess: each execution runs in a background "
        "process of its own and `run()` returns at once",
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
    summary = (
        "this machine: in the process that starts it (mode=in_process), or in a background "
        "process per execution (mode=subprocess)"
    )
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


def find_flavor(name: str) -> StackFlavor:
    """An installed flavor; a well-known one whose extra is missing names the pip install
    (ConfigurationError), any other unknown name lists the installed ones (NotFoundError)."""
    if name not in installed_flavors():
        if name in _plugins.KNOWN_EXTRAS:
            load_flavor(name)
        raise NotFoundError(
            f"unknown orchestrator flavor {name!r}; installed: {', '.join(installed_flavors())}"
        )
    return load_flavor(name)


def describe_flavor(name: str, *, infrastructure: bool = False) -> dict[str, Any]:
    """What `kitaru stack flavors --json` prints and the server's /api/v1/flavors answers:
    each setting (required, default, description), its JSON schema, and the components a
    stack of the flavor needs. `infrastructure` adds the settings of the flavor's
    `kitaru stack provision` program (loading it imports Pulumi)."""
    flavor = find_flavor(name)
    model = flavor.settings_model
    return {
        "flavor": flavor.name,
        "summary": flavor.summary,
        "builder": flavor.default_builder,
        "needs_registry": flavor.needs_registry,
        "needs_network_journal": flavor.needs_network_journal,
        "settings": {
            key: {
                "required": f.is_required(),
                "default": None if f.is_required() else f.get_default(call_default_factory=True),
                "description": f.description or "",
            }
            for key, f in model.model_fields.items()
        },
        "settings_schema": model.model_json_schema(),
        "infrastructure": _infra_fields(name) if infrastructure else None,
    }


def _infra_fields(flavor: str) -> dict[str, str] | None:
    """The settings of the flavor's infrastructure program, if one is installed."""
    if flavor not in _plugins.installed("kitaru.infra"):
        return None
    try:
        fields: dict[str, str] = _plugins.load("kitaru.infra", flavor).input_fields()
    except KitaruError:
        return None
    return fields


def settings_of(stack: StackRecord) -> Any:
    """The stack's validated settings object."""
    return load_flavor(stack.orchestrator).settings_model.model_validate(stack.settings)
