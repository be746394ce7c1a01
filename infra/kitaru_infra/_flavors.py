"""The stack flavors that have an infrastructure program, and what each needs installed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kitaru_infra._errors import InfraConfigError


class Flavor(StrEnum):
    """A stack flavor, named like its orchestrator."""

    AWS_BATCH = "aws_batch"
    GCP_CLOUD_RUN = "gcp_cloud_run"
    AZURE_CONTAINER_APPS = "azure_container_apps"
    KUBERNETES = "kubernetes"


@dataclass(frozen=True)
class Provider:
    """A Pulumi provider: its Python module, its distribution and the engine plugin name."""

    module: str
    distribution: str
    plugin: str


@dataclass(frozen=True)
class FlavorInfo:
    flavor: Flavor
    extra: str
    provider: Provider
    component_module: str
    component_class: str


_INFO = {
    Flavor.AWS_BATCH: FlavorInfo(
        Flavor.AWS_BATCH,
        "aws",
        Provider("pulumi_aws", "pulumi-aws", "aws"),
        "kitaru_infra._aws",
        "AwsBatchInfra",
    ),
    Flavor.GCP_CLOUD_RUN: FlavorInfo(
        Flavor.GCP_CLOUD_RUN,
        "gcp",
        Provider("pulumi_gcp", "pulumi-gcp", "gcp"),
        "kitaru_infra._gcp",
        "GcpCloudRunInfra",
    ),
    Flavor.AZURE_CONTAINER_APPS: FlavorInfo(
        Flavor.AZURE_CONTAINER_APPS,
        "azure",
        Provider("pulumi_azure_native", "pulumi-azure-native", "azure-native"),
        "kitaru_infra._azure",
        "AzureContainerAppsInfra",
    ),
    Flavor.KUBERNETES: FlavorInfo(
        Flavor.KUBERNETES,
        "kubernetes",
        Provider("pulumi_kubernetes", "pulumi-kubernetes", "kubernetes"),
        "kitaru_infra._kubernetes",
        "KubernetesInfra",
    ),
}


def parse_flavor(value: str | Flavor) -> Flavor:
    """The flavor named `value` (`aws-batch` and `aws_batch` both work)."""
    if isinstance(value, Flavor):
        return value
    normalized = value.strip().lower().replace("-", "_")
    try:
        return Flavor(normalized)
    except ValueError:
        known = ", ".join(f.value for f in Flavor)
        raise InfraConfigError(
            f"no infrastructure program for flavor {value!r}; use one of {known}"
        ) from None


def flavor_info(flavor: str | Flavor) -> FlavorInfo:
    return _INFO[parse_flavor(flavor)]
