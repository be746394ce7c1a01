"""The settings schema of each stack flavor. Implementations are in kitaru_orchestrators."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from kitaru_stacks._common import ContainerFlavor, ContainerSettings


class DockerSettings(ContainerSettings):
    docker_host: str | None = Field(
        None, description="Docker engine address (default: DOCKER_HOST, else the local socket)"
    )
    network: str = Field(
        "host",
        description="container network; host lets the container reach a journal and store "
        "on this machine's loopback",
    )
    cpus: float | None = Field(None, description="CPU limit per container")
    memory: str | None = Field(None, description="memory limit per container, e.g. 2g")
    remove_containers: bool = Field(
        False, description="remove containers when they end (their logs go with them)"
    )


class ProvisionedSettings(ContainerSettings):
    """Settings of the flavors that `kitaru stack provision` can create the
    infrastructure of; it fills these in, and finds its state again through them."""

    infra_inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="settings the infrastructure was provisioned with (`kitaru stack "
        "provision --set`); secrets only as env: references",
    )
    infra_backend: str | None = Field(
        None,
        description="Pulumi state backend of the stack's infrastructure (file://, s3://, "
        "gs://, azblob://, Pulumi Cloud)",
    )
    infra_outputs: dict[str, Any] = Field(
        default_factory=dict,
        description="what the last `kitaru stack provision` exported, e.g. the policy or "
        "role to grant the people and CI that run flows on the stack",
    )


class KubernetesSettings(ProvisionedSettings):
    namespace: str = Field("default", description="namespace the Jobs are created in")
    service_account: str | None = Field(None, description="service account the Job's pod runs as")
    kubeconfig: str | None = Field(
        None, description="kubeconfig file (default: KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    context: str | None = Field(None, description="kubeconfig context")
    cpu: str = Field("1", description="CPU request and limit, e.g. 500m")
    memory: str = Field("2Gi", description="memory request and limit")
    image_pull_secrets: list[str] = Field(
        default_factory=list,
        description="names of Secrets for pulling from a private registry",
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="node labels")
    ttl_seconds_after_finished: int = Field(
        86400, ge=0, description="how long a finished Job (and its logs) is kept"
    )
    active_deadline_seconds: int | None = Field(
        None, gt=0, description="kill the Job after this long"
    )


class AwsBatchSettings(ProvisionedSettings):
    job_queue: str = Field(..., description="AWS Batch job queue name or ARN")
    region: str = Field(..., description="AWS region, e.g. us-east-1")
    platform: Literal["FARGATE", "EC2"] = Field(
        "FARGATE", description="compute the job queue runs on"
    )
    vcpus: str = Field("1", description="vCPUs per job")
    memory_mib: int = Field(2048, gt=0, description="memory per job in MiB")
    job_role_arn: str | None = Field(
        None, description="IAM role the job's code runs as (reads the bucket)"
    )
    execution_role_arn: str | None = Field(
        None, description="IAM role that pulls the image and writes logs (Fargate)"
    )
    log_group: str = Field("/aws/batch/job", description="CloudWatch Logs group of the jobs")
    job_definition_prefix: str = Field(
        "kitaru-",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
        description="start of the job definition names (the orchestrator policy "
        "`kitaru stack provision` makes allows only these)",
    )
    assign_public_ip: bool = Field(
        False, description="Fargate: give tasks a public IP (subnets without NAT)"
    )
    endpoint_url: str | None = Field(
        None, description="AWS API endpoint (default: AWS_ENDPOINT_URL, else AWS itself)"
    )


class GcpCloudRunSettings(ProvisionedSettings):
    project: str = Field(..., description="GCP project id")
    region: str = Field(..., description="Cloud Run region, e.g. europe-west1")
    service_account: str | None = Field(None, description="service account email the job runs as")
    cpu: str = Field("1", description="CPU limit per task")
    memory: str = Field("2Gi", description="memory limit per task")
    timeout_seconds: int = Field(3600, gt=0, description="task timeout")
    max_retries: int = Field(0, ge=0, description="retries of a failed task")
    job_prefix: str = Field("kitaru", description="prefix of the Cloud Run job names")
    api_endpoint: str | None = Field(
        None, description="Cloud Run API endpoint (default: the regional one)"
    )
    logging_endpoint: str | None = Field(
        None, description="Cloud Logging API endpoint (default: logging.googleapis.com)"
    )


class AzureContainerAppsSettings(ProvisionedSettings):
    subscription_id: str = Field(..., description="Azure subscription id")
    resource_group: str = Field(..., description="resource group of the jobs")
    environment_id: str = Field(
        ..., description="resource id of the Container Apps managed environment"
    )
    location: str = Field(..., description="Azure region, e.g. westeurope")
    identity: str | None = Field(
        None,
        description="resource id of a user-assigned managed identity for pulling the image "
        "and reading Key Vault secrets",
    )
    cpu: float = Field(0.5, gt=0, description="vCPUs per execution")
    memory: str = Field("1Gi", description="memory per execution")
    replica_timeout_seconds: int = Field(3600, gt=0, description="execution timeout")
    job_prefix: str = Field("kitaru", description="prefix of the Container Apps job names")
    base_url: str | None = Field(
        None, description="Azure Resource Manager endpoint (default: the public cloud)"
    )
    log_analytics_workspace_id: str | None = Field(
        None,
        description="workspace (customer) id of the environment's Log Analytics: "
        "`executions logs --orchestrator` and failure reasons are read from it",
    )
    log_analytics_endpoint: str | None = Field(
        None, description="Log Analytics query API endpoint (default: api.loganalytics.io)"
    )


def _flavor(name: str, summary: str, model: type[BaseModel], registry: bool) -> ContainerFlavor:
    flavor = ContainerFlavor()
    flavor.name = name
    flavor.summary = summary
    flavor.settings_model = model
    flavor.needs_registry = registry
    return flavor


DOCKER = _flavor(
    "docker", "a container per execution on a Docker engine", DockerSettings, registry=False
)
KUBERNETES = _flavor(
    "kubernetes", "a batch/v1 Job per execution", KubernetesSettings, registry=True
)
AWS_BATCH = _flavor(
    "aws_batch",
    "an AWS Batch job per execution (a job definition per image)",
    AwsBatchSettings,
    registry=True,
)
GCP_CLOUD_RUN = _flavor(
    "gcp_cloud_run",
    "a Cloud Run Jobs execution per execution (a job per image, run with overrides)",
    GcpCloudRunSettings,
    registry=True,
)
AZURE_CONTAINER_APPS = _flavor(
    "azure_container_apps",
    "an Azure Container Apps job execution per execution (started with its own template)",
    AzureContainerAppsSettings,
    registry=True,
)
