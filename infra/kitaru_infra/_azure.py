"""Azure Container Apps jobs: what the `azure_container_apps` orchestrator and the Azure
Blob artifact store need."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pulumi
from pulumi_azure_native import (
    app,
    authorization,
    containerregistry,
    managedidentity,
    operationalinsights,
    resources,
    storage,
)

from kitaru_infra import _permissions as perms
from kitaru_infra._config import AzureContainerAppsConfig

# Role definition ids are tenant-wide GUIDs; derive ours from the stack so that a second
# `provision` of the same stack updates the role instead of creating another.
_ROLE_NAMESPACE = uuid.UUID("4b0f6f59-0c1e-4a5e-9d51-6b8f3f7d2a10")


def _alnum(prefix: str, limit: int) -> str:
    # Storage account and registry names allow lowercase letters and digits only, and
    # Pulumi appends a random suffix to them.
    return re.sub(r"[^a-z0-9]", "", prefix)[:limit]


class AzureContainerAppsInfra(pulumi.ComponentResource):
    """A resource group holding a storage account and artifact container, a container
    registry, a Container Apps environment logging to Log Analytics, the jobs' managed
    identity with its role assignments, and the orchestrator's custom role.
    """

    outputs: dict[str, pulumi.Input[Any]]

    def __init__(
        self,
        name: str,
        config: AzureContainerAppsConfig,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("kitaru:infra:AzureContainerApps", name, None, opts)
        p = config.name_prefix
        tags = config.tags()
        child = pulumi.ResourceOptions(parent=self)
        # Deleting a storage account deletes every blob in it, and an Azure registry
        # deletes its images, whatever they hold: protect both unless asked.
        keep = pulumi.ResourceOptions(parent=self, protect=not config.force_destroy)
        subscription_id: pulumi.Output[str] = authorization.get_client_config_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).subscription_id

        group = resources.ResourceGroup(f"{p}-rg", location=config.location, tags=tags, opts=child)
        account = storage.StorageAccount(
            f"{_alnum(p, 10)}art",
            resource_group_name=group.name,
            location=config.location,
            kind="StorageV2",
            sku={"name": "Standard_LRS"},
            allow_blob_public_access=False,
            allow_shared_key_access=config.allow_shared_key_access,
            enable_https_traffic_only=True,
            minimum_tls_version="TLS1_2",
            encryption={
                "key_source": "Microsoft.Storage",
                "services": {"blob": {"enabled": True, "key_type": "Account"}},
            },
            tags=tags,
            opts=keep,
        )
        storage.BlobServiceProperties(
            f"{p}-blob-service",
            resource_group_name=group.name,
            account_name=account.name,
            blob_services_name="default",
            is_versioning_enabled=True,
            delete_retention_policy={"enabled": True, "days": 7},
            opts=child,
        )
        container = storage.BlobContainer(
            f"{p}-artifacts",
            resource_group_name=group.name,
            account_name=account.name,
            container_name="artifacts",
            public_access="None",
            opts=child,
        )
        registry = containerregistry.Registry(
            f"{_alnum(p, 20)}images",
            resource_group_name=group.name,
            location=config.location,
            sku={"name": config.registry_sku},
            admin_user_enabled=False,
            anonymous_pull_enabled=False,
            tags=tags,
            opts=keep,
        )
        workspace = operationalinsights.Workspace(
            f"{p}-logs",
            resource_group_name=group.name,
            location=config.location,
            sku={"name": "PerGB2018"},
            retention_in_days=config.log_retention_days,
            tags=tags,
            opts=child,
        )
        keys = operationalinsights.get_shared_keys_output(
            resource_group_name=group.name,
            workspace_name=workspace.name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        environment = app.ManagedEnvironment(
            f"{p}-env",
            resource_group_name=group.name,
            location=config.location,
            app_logs_configuration={
                "destination": "log-analytics",
                "log_analytics_configuration": {
                    "customer_id": workspace.customer_id,
                    "shared_key": pulumi.Output.secret(keys.primary_shared_key),
                },
            },
            tags=tags,
            opts=child,
        )
        identity = managedidentity.UserAssignedIdentity(
            f"{p}-job",
            resource_group_name=group.name,
            location=config.location,
            tags=tags,
            opts=child,
        )

        def builtin_role(role_id: str) -> pulumi.Output[str]:
            return subscription_id.apply(
                lambda sub: (
                    f"/subscriptions/{sub}/providers/Microsoft.Authorization/"
                    f"roleDefinitions/{role_id}"
                )
            )

        scopes = {"artifacts": container.id, "registry": registry.id}
        for target, role_id in perms.AZURE_JOB_ROLES:
            authorization.RoleAssignment(
                f"{p}-job-{target}",
                scope=scopes[target],
                role_definition_id=builtin_role(role_id),
                principal_id=identity.principal_id,
                principal_type="ServicePrincipal",
                opts=child,
            )

        role_guid = str(
            uuid.uuid5(_ROLE_NAMESPACE, f"{pulumi.get_project()}/{pulumi.get_stack()}/{p}")
        )
        orchestrator_role = authorization.RoleDefinition(
            f"{p}-orchestrator",
            role_definition_id=role_guid,
            role_name=group.name.apply(lambda rg: f"Kitaru orchestrator ({rg})"),
            description="Run Kitaru executions as Container Apps jobs: submit, status, "
            "logs, cancel.",
            role_type="CustomRole",
            scope=group.id,
            assignable_scopes=[group.id],
            permissions=[{"actions": list(perms.AZURE_ORCHESTRATOR_ACTIONS), "not_actions": []}],
            opts=child,
        )

        self.outputs = {
            "artifact_store": container.name.apply(lambda name: f"az://{name}"),
            "storage_account": account.name,
            "storage_account_url": account.primary_endpoints.blob,
            "container": container.name,
            "registry": registry.login_server,
            "subscription_id": subscription_id,
            "resource_group": group.name,
            "location": config.location,
            "environment_id": environment.id,
            "identity_id": identity.id,
            "identity_client_id": identity.client_id,
            "log_analytics_workspace_id": workspace.customer_id,
            "orchestrator_role_id": orchestrator_role.id,
        }
        self.register_outputs(self.outputs)
