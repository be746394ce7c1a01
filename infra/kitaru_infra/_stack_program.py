"""What the `kitaru.infra` entry points give: one infrastructure program per stack flavor,
as `kitaru stack preview / provision / destroy` drive it (kitaru.stacks.InfraProgram).

Loading these objects imports neither Pulumi nor a provider: that happens when a program
runs, so a missing extra is reported then, with the `pip install` that adds it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kitaru.stacks import ProvisionedStack
from kitaru_infra._flavors import Flavor

OnOutput = Callable[[str], None]


class StackInfraProgram:
    """The Pulumi program of one flavor, behind the core's InfraProgram contract."""

    def __init__(self, flavor: Flavor) -> None:
        self.flavor = flavor.value
        self._flavor = flavor

    def __repr__(self) -> str:
        return f"StackInfraProgram({self.flavor!r})"

    def input_fields(self) -> dict[str, str]:
        from kitaru_infra._config import CONFIG_MODELS

        model = CONFIG_MODELS[self._flavor]
        return {key: info.description or "" for key, info in model.model_fields.items()}

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        from kitaru_infra._config import config_for

        config_for(self._flavor, inputs)

    def provides(self) -> frozenset[str]:
        from kitaru_infra._outputs import PROVIDES

        return PROVIDES[self._flavor]

    def journal_reference(self, inputs: Mapping[str, Any]) -> str | None:
        from kitaru_infra._config import config_for
        from kitaru_infra._outputs import journal_reference

        return journal_reference(self._flavor, config_for(self._flavor, inputs))

    def default_backend_url(self) -> str:
        from kitaru_infra._automation import default_backend_url

        return default_backend_url()

    def preview(
        self,
        stack_name: str,
        inputs: Mapping[str, Any],
        backend_url: str | None,
        on_output: OnOutput | None,
    ) -> dict[str, Any]:
        from kitaru_infra._automation import preview

        result = preview(self._flavor, stack_name, inputs, backend_url, on_output=on_output)
        return result.to_dict()

    def provision(
        self,
        stack_name: str,
        inputs: Mapping[str, Any],
        backend_url: str | None,
        on_output: OnOutput | None,
    ) -> ProvisionedStack:
        from kitaru_infra._automation import provision

        outputs = provision(self._flavor, stack_name, inputs, backend_url, on_output=on_output)
        return self.stack_settings(outputs, inputs)

    def stack_settings(
        self, outputs: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> ProvisionedStack:
        from kitaru_infra._config import config_for
        from kitaru_infra._outputs import stack_settings

        mapped = stack_settings(self._flavor, outputs, config_for(self._flavor, inputs))
        return ProvisionedStack(
            artifact_store=mapped.artifact_store,
            registry=mapped.registry,
            journal=mapped.journal,
            settings=dict(mapped.settings),
            outputs=dict(outputs),
        )

    def destroy(
        self,
        stack_name: str,
        inputs: Mapping[str, Any],
        backend_url: str | None,
        on_output: OnOutput | None,
    ) -> None:
        from kitaru_infra._automation import destroy

        destroy(self._flavor, stack_name, inputs, backend_url, on_output=on_output)


AWS_BATCH = StackInfraProgram(Flavor.AWS_BATCH)
GCP_CLOUD_RUN = StackInfraProgram(Flavor.GCP_CLOUD_RUN)
AZURE_CONTAINER_APPS = StackInfraProgram(Flavor.AZURE_CONTAINER_APPS)
KUBERNETES = StackInfraProgram(Flavor.KUBERNETES)
