"""Cloud Run Jobs: what the `gcp_cloud_run` orchestrator and the GCS artifact store need."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_gcp as gcp

from kitaru_infra import _permissions as perms
from kitaru_infra._config import GcpCloudRunConfig


def _camel(prefix: str) -> str:
    # Custom role ids allow letters, digits, '_' and '.' only.
    head, *rest = prefix.split("-")
    return head + "".join(part.capitalize() for part in rest)


class GcpCloudRunInfra(pulumi.ComponentResource):
    """The APIs to enable, a GCS bucket, an Artifact Registry repository, the jobs'
    service account with access to that bucket only, and the orchestrator's custom role.
    """

    outputs: dict[str, pulumi.Input[Any]]

    def __init__(
        self, name: str, config: GcpCloudRunConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kitaru:infra:GcpCloudRun", name, None, opts)
        p = config.name_prefix
        labels = config.tags()
        project = config.project

        apis: list[pulumi.Resource] = []
        if config.enable_apis:
            wanted = list(perms.GCP_APIS)
            if config.journal_secret:
                wanted.append(perms.GCP_SECRET_API)
            for api in wanted:
                apis.append(
                    gcp.projects.Service(
                        f"{p}-{api.split('.')[0]}",
                        project=project,
                        service=api,
                        # Other workloads in the project may use the same API.
                        disable_on_destroy=False,
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=apis)

        bucket = gcp.storage.Bucket(
            f"{p}-artifacts",
            project=project,
            location=(config.bucket_location or config.region).upper(),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            # Versioning keeps every replaced object; expire old versions after 30 days.
            lifecycle_rules=[
                {
                    "action": {"type": "Delete"},
                    "condition": {"days_since_noncurrent_time": 30, "with_state": "ARCHIVED"},
                }
            ],
            encryption=(
                {"default_kms_key_name": config.kms_key_name} if config.kms_key_name else None
            ),
            force_destroy=config.force_destroy,
            labels=labels,
            opts=after_apis,
        )
        repo = gcp.artifactregistry.Repository(
            f"{p}-images",
            project=project,
            location=config.region,
            repository_id=f"{p}-images",
            format="DOCKER",
            docker_config={"immutable_tags": True},
            description="Kitaru deployment images.",
            labels=labels,
            opts=after_apis,
        )
        account = gcp.serviceaccount.Account(
            f"{p}-job",
            project=project,
            account_id=f"{p}-job",
            display_name="Kitaru jobs",
            description="Runs Kitaru executions: artifacts in the stack's bucket only.",
            opts=after_apis,
        )
        member = account.email.apply(lambda email: f"serviceAccount:{email}")
        gcp.storage.BucketIAMMember(
            f"{p}-job-artifacts",
            bucket=bucket.name,
            role=perms.GCP_JOB_BUCKET_ROLE,
            member=member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if config.journal_secret:
            gcp.secretmanager.SecretIamMember(
                f"{p}-job-journal",
                project=project,
                secret_id=config.journal_secret,
                role=perms.GCP_JOB_SECRET_ROLE,
                member=member,
                opts=after_apis,
            )
        role = gcp.projects.IAMCustomRole(
            f"{p}-orchestrator",
            project=project,
            role_id=f"{_camel(p)}Orchestrator",
            title=f"Kitaru orchestrator ({p})",
            description="Run Kitaru executions as Cloud Run jobs: submit, status, logs, "
            "cancel. Also grant roles/iam.serviceAccountUser on the jobs' service account.",
            permissions=list(perms.GCP_ORCHESTRATOR_PERMISSIONS),
            opts=after_apis,
        )

        self.outputs = {
            "artifact_store": bucket.name.apply(lambda name: f"gs://{name}"),
            "bucket": bucket.name,
            "registry": repo.repository_id.apply(
                lambda rid: f"{config.region}-docker.pkg.dev/{project}/{rid}"
            ),
            "project": project,
            "region": config.region,
            "service_account": account.email,
            "journal_secret": config.journal_secret,
            "orchestrator_role": role.name,
        }
        self.register_outputs(self.outputs)
