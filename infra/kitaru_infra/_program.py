"""The inline Pulumi program of each flavor, imported only when it is needed."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from kitaru_infra._config import InfraConfig
from kitaru_infra._errors import MissingExtraError
from kitaru_infra._flavors import Flavor, flavor_info


def component_class(flavor: str | Flavor) -> Any:
    """The ComponentResource class of `flavor`, or an error naming the extra to install."""
    info = flavor_info(flavor)
    try:
        module = importlib.import_module(info.component_module)
    except ImportError as exc:
        missing = exc.name or "pulumi"
        raise MissingExtraError(
            f"the {info.flavor} infrastructure program needs {missing}, which is not "
            f'installed; install it with: pip install "kitaru[{info.extra}]"'
        ) from None
    return getattr(module, info.component_class)


def program_for(flavor: str | Flavor, config: InfraConfig) -> Callable[[], None]:
    """A Pulumi program (a function of no arguments) that creates the flavor's component
    and exports its outputs under their stable names."""
    cls = component_class(flavor)

    def program() -> None:
        import pulumi

        component = cls(config.name_prefix, config)
        for name, value in component.outputs.items():
            pulumi.export(name, value)

    return program
