"""Kitaru stack flavors: the settings schema of each orchestrator flavor and what a stack
of it needs. Registered under the `kitaru.stacks` entry points; implementations are in
kitaru_orchestrators and kitaru_builders."""

from kitaru_stacks._common import ContainerFlavor, ContainerSettings
from kitaru_stacks._flavors import (
    AwsBatchSettings,
    AzureContainerAppsSettings,
    DockerSettings,
    GcpCloudRunSettings,
    KubernetesSettings,
)

__all__ = [
    "AwsBatchSettings",
    "AzureContainerAppsSettings",
    "ContainerFlavor",
    "ContainerSettings",
    "DockerSettings",
    "GcpCloudRunSettings",
    "KubernetesSettings",
]
