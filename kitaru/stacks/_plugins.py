"""Finding stack flavors, orchestrators and builders through entry points, lazily.

Member distributions register implementations under the entry point groups
`kitaru.stacks` (flavor: settings schema and checks), `kitaru.orchestrators`,
`kitaru.builders` and `kitaru.infra` (what `kitaru stack provision` runs). Nothing is imported until a stack needs it, so `import kitaru`
never pulls in a cloud SDK.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from kitaru._errors import InvalidConfigurationError, KitaruUsageError

# The extra that brings each well-known flavor (for the install hint when it is missing).
KNOWN_EXTRAS: dict[str, str] = {
    "docker": "docker",
    "kubernetes": "kubernetes",
    "aws_batch": "aws",
    "gcp_cloud_run": "gcp",
    "azure_container_apps": "azure",
}

_GROUP_NOUN = {
    "kitaru.stacks": "stack flavor",
    "kitaru.orchestrators": "orchestrator flavor",
    "kitaru.builders": "builder flavor",
    "kitaru.infra": "infrastructure program",
}


# Implementations the core carries itself, found when no distribution registers the name:
# the `local` stack must work on the core install alone.
_BUILT_IN: dict[tuple[str, str], str] = {
    ("kitaru.orchestrators", "local"): "kitaru.stacks._background:LocalOrchestrator",
}


@functools.cache
def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def installed(group: str) -> list[str]:
    return sorted(_entry_points(group))


def load(group: str, name: str) -> Any:
    """The object registered as `name` in `group`, with an error that says what to do."""
    noun = _GROUP_NOUN.get(group, group)
    ep = _entry_points(group).get(name)
    if ep is None and (group, name) in _BUILT_IN:
        ep = EntryPoint(name=name, value=_BUILT_IN[group, name], group=group)
    if ep is None:
        extra = KNOWN_EXTRAS.get(name)
        if extra is not None:
            raise InvalidConfigurationError(
                f"the {name} {noun} is not installed; install it with: "
                f'pip install "kitaru[{extra}]"'
            )
        names = ", ".join(installed(group)) or "none"
        raise KitaruUsageError(f"unknown {noun} {name!r}; installed: {names}")
    try:
        return ep.load()
    except ImportError as exc:
        extra = KNOWN_EXTRAS.get(name, name)
        raise InvalidConfigurationError(
            f"the {name} {noun} needs a package that is not installed ({exc.name or exc}); "
            f'install it with: pip install "kitaru[{extra}]"'
        ) from None
