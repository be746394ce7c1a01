"""Infrastructure as code for Kitaru stacks, with Pulumi.

One Pulumi ComponentResource per stack flavor creates what its orchestrator and stores
need; `preview`, `provision` and `destroy` drive it with the Automation API:

    from kitaru_infra import provision, stack_settings

    outputs = provision("aws_batch", "prod", {"region": "eu-west-1"})
    settings = stack_settings("aws_batch", outputs)   # artifact_store, registry, job_queue...

Importing this package does not import Pulumi; the components
(`AwsBatchInfra`, `GcpCloudRunInfra`, `AzureContainerAppsInfra`, `KubernetesInfra`) are
loaded on first use and need the flavor's extra (`pip install "kitaru[aws]"`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kitaru_infra._automation import (
        PreviewResult,
        ResourceChange,
        default_backend_url,
        destroy,
        preview,
        provision,
        pulumi_cli,
    )
    from kitaru_infra._aws import AwsBatchInfra
    from kitaru_infra._azure import AzureContainerAppsInfra
    from kitaru_infra._config import (
        AwsBatchConfig,
        AzureContainerAppsConfig,
        GcpCloudRunConfig,
        InfraConfig,
        KubernetesConfig,
        config_for,
        config_from_settings,
        settings_fields,
    )
    from kitaru_infra._errors import (
        InfraConfigError,
        InfraError,
        MissingExtraError,
        PulumiCliMissingError,
    )
    from kitaru_infra._flavors import Flavor
    from kitaru_infra._gcp import GcpCloudRunInfra
    from kitaru_infra._kubernetes import KubernetesInfra
    from kitaru_infra._outputs import OUTPUTS, StackSettings, stack_settings
    from kitaru_infra._program import program_for

__all__ = [
    "OUTPUTS",
    "AwsBatchConfig",
    "AwsBatchInfra",
    "AzureContainerAppsConfig",
    "AzureContainerAppsInfra",
    "Flavor",
    "GcpCloudRunConfig",
    "GcpCloudRunInfra",
    "InfraConfig",
    "InfraConfigError",
    "InfraError",
    "KubernetesConfig",
    "KubernetesInfra",
    "MissingExtraError",
    "PreviewResult",
    "PulumiCliMissingError",
    "ResourceChange",
    "StackSettings",
    "config_for",
    "config_from_settings",
    "default_backend_url",
    "destroy",
    "preview",
    "program_for",
    "provision",
    "pulumi_cli",
    "settings_fields",
    "stack_settings",
]

# name -> module. Everything loads on first use: `kitaru_infra.cli` is mounted into the
# `kitaru` command line, whose start-up must not pay for pydantic models, and the
# components import Pulumi and a provider SDK (seconds, hundreds of MB).
_LAZY = {
    **dict.fromkeys(
        [
            "PreviewResult",
            "ResourceChange",
            "default_backend_url",
            "destroy",
            "preview",
            "provision",
            "pulumi_cli",
        ],
        "kitaru_infra._automation",
    ),
    **dict.fromkeys(
        [
            "AwsBatchConfig",
            "AzureContainerAppsConfig",
            "GcpCloudRunConfig",
            "InfraConfig",
            "KubernetesConfig",
            "config_for",
            "config_from_settings",
            "settings_fields",
        ],
        "kitaru_infra._config",
    ),
    **dict.fromkeys(
        ["InfraConfigError", "InfraError", "MissingExtraError", "PulumiCliMissingError"],
        "kitaru_infra._errors",
    ),
    "Flavor": "kitaru_infra._flavors",
    **dict.fromkeys(["OUTPUTS", "StackSettings", "stack_settings"], "kitaru_infra._outputs"),
    "program_for": "kitaru_infra._program",
}
_COMPONENTS = {
    "AwsBatchInfra": "aws_batch",
    "GcpCloudRunInfra": "gcp_cloud_run",
    "AzureContainerAppsInfra": "azure_container_apps",
    "KubernetesInfra": "kubernetes",
}


def __getattr__(name: str) -> Any:
    if name in _COMPONENTS:
        from kitaru_infra._program import component_class

        return component_class(_COMPONENTS[name])
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'kitaru_infra' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
