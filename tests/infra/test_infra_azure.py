"""The azure_container_apps program on Pulumi's mocks."""

from __future__ import annotations

import pytest
from infra_mocks import SUBSCRIPTION, Recorded, run_program
from kitaru_infra import OUTPUTS, Flavor

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# What Pulumi puts in place of a value marked secret.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
ROLE_DEFS = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.Authorization/roleDefinitions"


@pytest.fixture(scope="module")
def default() -> Recorded:
    return run_program("azure_container_apps")


def test_creates_every_resource_the_orchestrator_needs(default: Recorded) -> None:
    assert default.types() == {
        "kitaru:infra:AzureContainerApps",
        "azure-native:resources:ResourceGroup",
        "azure-native:storage:StorageAccount",
        "azure-native:storage:BlobServiceProperties",
        "azure-native:storage:BlobContainer",
        "azure-native:containerregistry:Registry",
        "azure-native:operationalinsights:Workspace",
        "azure-native:app:ManagedEnvironment",
        "azure-native:managedidentity:UserAssignedIdentity",
        "azure-native:authorization:RoleAssignment",
        "azure-native:authorization:RoleDefinition",
    }


def test_storage_is_private_encrypted_https_only_and_keyless(default: Recorded) -> None:
    account = default.one("azure-native:storage:StorageAccount").inputs
    assert account["allowBlobPublicAccess"] is False
    assert account["allowSharedKeyAccess"] is False
    assert account["enableHttpsTrafficOnly"] is True
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["encryption"] == {
        "keySource": "Microsoft.Storage",
        "services": {"blob": {"enabled": True, "keyType": "Account"}},
    }
    service = default.one("azure-native:storage:BlobServiceProperties").inputs
    assert service["isVersioningEnabled"] is True
    # Deleting the account would delete every artifact: destroy refuses unless asked.
    assert default.protected == {
        ("azure-native:storage:StorageAccount", "kitaruart"),
        ("azure-native:containerregistry:Registry", "kitaruimages"),
    }
    container = default.one("azure-native:storage:BlobContainer").inputs
    assert container["publicAccess"] == "None"
    assert container["containerName"] == "artifacts"


def test_registry_has_no_admin_user_and_no_anonymous_pull(default: Recorded) -> None:
    registry = default.one("azure-native:containerregistry:Registry").inputs
    assert registry["adminUserEnabled"] is False
    assert registry["anonymousPullEnabled"] is False
    assert registry["sku"] == {"name": "Basic"}


def test_environment_logs_to_log_analytics(default: Recorded) -> None:
    workspace = default.one("azure-native:operationalinsights:Workspace").inputs
    assert workspace["retentionInDays"] == 30
    environment = default.one("azure-native:app:ManagedEnvironment").inputs
    wrapped = environment["appLogsConfiguration"]
    # The workspace's shared key makes the whole block a secret in the state.
    assert wrapped[SECRET_SIG]
    logs = wrapped["value"]
    assert logs["logAnalyticsConfiguration"]["sharedKey"] == "primary-key"
    assert logs["destination"] == "log-analytics"
    assert logs["logAnalyticsConfiguration"]["customerId"] == "99999999-8888-7777-6666-555555555555"


def test_job_identity_gets_blob_data_on_the_container_and_pull_on_the_registry(
    default: Recorded,
) -> None:
    grants = {
        r.name: r.inputs for r in default.of_type("azure-native:authorization:RoleAssignment")
    }
    assert set(grants) == {"kitaru-job-artifacts", "kitaru-job-registry"}
    artifacts, registry = grants["kitaru-job-artifacts"], grants["kitaru-job-registry"]
    assert artifacts["roleDefinitionId"] == f"{ROLE_DEFS}/ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    assert artifacts["scope"].endswith("/blobServices/default/containers/artifacts")
    assert registry["roleDefinitionId"] == f"{ROLE_DEFS}/7f951dda-4ed3-4680-a7ca-43fe172d538d"
    assert "/Microsoft.ContainerRegistry/registries/" in registry["scope"]
    for grant in grants.values():
        assert grant["principalId"] == "aaaaaaaa-0000-0000-0000-000000000001"
        assert grant["principalType"] == "ServicePrincipal"


def test_orchestrator_role_is_scoped_to_the_resource_group(default: Recorded) -> None:
    role = default.one("azure-native:authorization:RoleDefinition").inputs
    group = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/kitaru-rg4f2e1a"
    assert role["scope"] == group
    assert role["assignableScopes"] == [group]
    assert role["roleType"] == "CustomRole"
    assert role["roleName"] == "Kitaru orchestrator (kitaru-rg4f2e1a)"
    (permissions,) = role["permissions"]
    assert permissions["actions"] == [
        "Microsoft.App/jobs/read",
        "Microsoft.App/jobs/write",
        "Microsoft.App/jobs/delete",
        "Microsoft.App/jobs/start/action",
        "Microsoft.App/jobs/stop/action",
        "Microsoft.App/jobs/executions/read",
        "Microsoft.App/managedEnvironments/read",
        "Microsoft.App/managedEnvironments/join/action",
        "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
        "Microsoft.OperationalInsights/workspaces/read",
        "Microsoft.OperationalInsights/workspaces/query/read",
    ]
    # Provisioning the same stack twice updates one role rather than adding another.
    assert (
        role["roleDefinitionId"]
        == run_program("azure_container_apps")
        .one("azure-native:authorization:RoleDefinition")
        .inputs["roleDefinitionId"]
    )


def test_outputs_have_their_stable_names(default: Recorded) -> None:
    assert list(default.outputs) == list(OUTPUTS[Flavor.AZURE_CONTAINER_APPS])
    out = default.outputs
    assert out["artifact_store"] == "az://artifacts"
    assert out["storage_account"] == "kitaruart3b9c0d1e"
    assert out["storage_account_url"] == "https://kitaruart3b9c0d1e.blob.core.windows.net/"
    assert out["registry"] == "kitaruimages5d6e7f.azurecr.io"
    assert out["subscription_id"] == SUBSCRIPTION
    assert out["resource_group"] == "kitaru-rg4f2e1a"
    assert out["location"] == "westeurope"
    assert out["identity_client_id"] == "cccccccc-0000-0000-0000-000000000002"
    assert out["identity_id"].endswith("/userAssignedIdentities/kitaru-job")
    assert out["log_analytics_workspace_id"] == "99999999-8888-7777-6666-555555555555"
    assert out["orchestrator_role_id"].startswith(ROLE_DEFS + "/")


def test_names_fit_azure_rules_for_long_prefixes() -> None:
    recorded = run_program(
        "azure_container_apps",
        {
            "name_prefix": "research-agents-prod",
            "location": "eastus2",
            "registry_sku": "Premium",
            "force_destroy": True,
        },
    )
    assert recorded.protected == set()
    # Storage accounts and registries take lowercase letters and digits only, and the
    # engine appends an 8-character suffix to a storage account's 24 allowed.
    account = recorded.one("azure-native:storage:StorageAccount")
    assert account.name == "researchagart"
    assert len(account.name) + 8 <= 24
    registry = recorded.one("azure-native:containerregistry:Registry")
    assert registry.name.isalnum() and registry.name.islower()
    assert registry.inputs["sku"] == {"name": "Premium"}
    assert recorded.outputs["location"] == "eastus2"
