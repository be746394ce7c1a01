"""Typed inputs of the infrastructure programs, one model per flavor.

Every field has a default except the ones no default can guess (the GCP project). The
models are frozen and reject unknown keys, so a typo in `--set` is an error that names
the field instead of a silently ignored setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from kitaru_infra._errors import InfraConfigError
from kitaru_infra._flavors import Flavor, parse_flavor

_PREFIX = r"^[a-z][a-z0-9-]{0,18}[a-z0-9]$"

# CloudWatch Logs accepts only these retention periods (days).
_CLOUDWATCH_RETENTION = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192}
    | {2557, 2922, 3288, 3653}
)


class InfraConfig(BaseModel):
    """Settings every flavor shares."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name_prefix: str = Field(
        "kitaru",
        pattern=_PREFIX,
        description="Prefix of every resource name: 2-20 lowercase letters, digits or '-'.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Tags/labels added to every resource that has them."
    )

    def tags(self) -> dict[str, str]:
        return {"managed-by": "kitaru", "kitaru-prefix": self.name_prefix, **self.labels}


class CloudInfraConfig(InfraConfig):
    """Settings of the flavors that create an artifact store and a registry."""

    force_destroy: bool = Field(
        False,
        description="Let `destroy` delete a bucket that still holds artifacts and a "
        "registry that still holds images. Off by default: destroying infrastructure "
        "should not silently delete stored artifacts.",
    )


class AwsBatchConfig(CloudInfraConfig):
    """AWS Batch on Fargate: S3 artifacts, ECR images, CloudWatch logs."""

    region: str = Field(
        "us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region of every resource."
    )
    vpc_id: str | None = Field(
        None, description="VPC for the jobs; the account's default VPC when not set."
    )
    subnet_ids: list[str] = Field(
        default_factory=list, description="Subnets for the jobs; every subnet of the VPC if empty."
    )
    security_group_ids: list[str] = Field(
        default_factory=list,
        description="Security groups for the jobs; an egress-only group is created if empty.",
    )
    assign_public_ip: bool | None = Field(
        None,
        description="Give jobs a public IP (needed to pull images without a NAT gateway). "
        "Default: on for the default VPC, off for a VPC you name.",
    )
    max_vcpus: int = Field(
        16, ge=1, le=10_000, description="Most vCPUs all running jobs may use together."
    )
    spot: bool = Field(False, description="Run on FARGATE_SPOT instead of FARGATE.")
    log_retention_days: int = Field(30, description="Days CloudWatch keeps job logs.")
    kms_key_arn: str | None = Field(
        None, description="Encrypt artifacts with this KMS key instead of S3-managed keys."
    )
    journal_secret_arn: str | None = Field(
        None,
        description="Secrets Manager secret holding the journal URL; jobs may read it, "
        "nothing else.",
    )

    @model_validator(mode="after")
    def _check(self) -> AwsBatchConfig:
        if self.log_retention_days not in _CLOUDWATCH_RETENTION:
            allowed = ", ".join(str(d) for d in sorted(_CLOUDWATCH_RETENTION))
            raise ValueError(f"log_retention_days must be one of {allowed}")
        if self.subnet_ids and not self.security_group_ids and self.vpc_id is None:
            raise ValueError(
                "subnet_ids without security_group_ids needs vpc_id (the VPC of those "
                "subnets) to create the jobs' security group in"
            )
        return self

    @property
    def uses_default_vpc(self) -> bool:
        return self.vpc_id is None and not self.subnet_ids


class GcpCloudRunConfig(CloudInfraConfig):
    """Cloud Run Jobs: GCS artifacts, Artifact Registry images."""

    project: str = Field(
        ..., pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", description="GCP project id."
    )
    region: str = Field(
        "us-central1",
        pattern=r"^[a-z]+-[a-z]+\d+$",
        description="Region of the jobs and the image repository.",
    )
    bucket_location: str | None = Field(
        None, description="Location of the artifact bucket; the region when not set."
    )
    kms_key_name: str | None = Field(
        None, description="Cloud KMS key for the bucket instead of Google-managed keys."
    )
    journal_secret: str | None = Field(
        None,
        description="Secret Manager secret id holding the journal URL; the job's service "
        "account may read it, nothing else.",
    )
    enable_apis: bool = Field(
        True, description="Enable the Google APIs the stack uses (never disabled on destroy)."
    )


class AzureContainerAppsConfig(CloudInfraConfig):
    """Azure Container Apps jobs: Blob Storage artifacts, ACR images, Log Analytics logs."""

    location: str = Field(
        "westeurope", pattern=r"^[a-z0-9]+$", description="Azure region of every resource."
    )
    registry_sku: Literal["Basic", "Standard", "Premium"] = Field(
        "Basic", description="Container registry tier."
    )
    log_retention_days: int = Field(
        30, ge=30, le=730, description="Days Log Analytics keeps job logs."
    )
    allow_shared_key_access: bool = Field(
        False,
        description="Allow account-key access to the storage account. Off: only Entra ID "
        "identities with a role can read or write artifacts.",
    )


class KubernetesConfig(InfraConfig):
    """Kubernetes: a namespace, service accounts and the RBAC the Job orchestrator needs.

    Artifacts and images live wherever you point the stack at (S3, GCS, a registry);
    this program only prepares the cluster.
    """

    namespace: str = Field(
        "kitaru",
        pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$",
        description="Namespace the execution Jobs run in.",
    )
    create_namespace: bool = Field(
        True, description="Create the namespace (off: it exists and is not managed here)."
    )
    context: str | None = Field(None, description="kubeconfig context; the current one if unset.")
    journal_url: SecretStr | None = Field(
        None,
        description="Journal URL to store in the journal secret. Kept encrypted in the "
        "Pulumi state; when unset, create the secret yourself (see docs).",
    )
    journal_secret_name: str = Field(
        "kitaru-journal",
        pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$",
        description="Secret the execution pods read the journal URL from (key `url`).",
    )


CONFIG_MODELS: dict[Flavor, type[InfraConfig]] = {
    Flavor.AWS_BATCH: AwsBatchConfig,
    Flavor.GCP_CLOUD_RUN: GcpCloudRunConfig,
    Flavor.AZURE_CONTAINER_APPS: AzureContainerAppsConfig,
    Flavor.KUBERNETES: KubernetesConfig,
}


def config_for(
    flavor: str | Flavor, values: Mapping[str, Any] | InfraConfig | None = None
) -> InfraConfig:
    """Validate `values` as the infrastructure config of `flavor`.

    Raises InfraConfigError naming the first bad field and the fields the flavor knows.
    """
    model = CONFIG_MODELS[parse_flavor(flavor)]
    if isinstance(values, model):
        return values
    if isinstance(values, InfraConfig):
        raise InfraConfigError(
            f"{type(values).__name__} is not the config of flavor {parse_flavor(flavor)}; "
            f"use {model.__name__}"
        )
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        raise InfraConfigError(_describe(parse_flavor(flavor), model, exc)) from None


def settings_fields(flavor: str | Flavor) -> list[str]:
    """The setting names the infrastructure program of `flavor` accepts."""
    return list(CONFIG_MODELS[parse_flavor(flavor)].model_fields)


def config_from_settings(flavor: str | Flavor, settings: Mapping[str, Any]) -> InfraConfig:
    """The infrastructure config found among a stack's settings.

    A stack's settings also hold orchestrator settings (a job queue, a namespace...) that
    the program does not take, so only the fields the config model knows are used.
    """
    known = set(settings_fields(flavor))
    return config_for(flavor, {k: v for k, v in settings.items() if k in known})


def _describe(flavor: Flavor, model: type[InfraConfig], exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"]) or "config"
    message = re.sub(r"^Value error, ", "", error["msg"])
    if error["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"{flavor}: unknown setting {field!r}; the settings are: {known}"
    if error["type"] == "missing":
        return f"{flavor}: setting {field!r} is required (set it with --set {field}=...)"
    if field == "config":
        return f"{flavor}: {message}"
    return f"{flavor}: setting {field!r}: {message}"
