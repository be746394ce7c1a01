"""From a program's outputs to a stack's settings, and from a stack's settings to a
program's config: pure functions, no Pulumi."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kitaru_infra import (
    OUTPUTS,
    AwsBatchConfig,
    Flavor,
    InfraError,
    KubernetesConfig,
    StackSettings,
    config_for,
    config_from_settings,
    stack_settings,
)
from kitaru_infra import _permissions as perms

DOCS = Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md"

AWS_OUTPUTS = {
    "artifact_store": "s3://kitaru-artifacts-1a2b",
    "bucket": "kitaru-artifacts-1a2b",
    "registry": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kitaru-images",
    "region": "eu-west-1",
    "job_queue": "arn:aws:batch:eu-west-1:123456789012:job-queue/kitaru-queue",
    "job_definition_prefix": "kitaru-",
    "job_role_arn": "arn:aws:iam::123456789012:role/kitaru-job",
    "execution_role_arn": "arn:aws:iam::123456789012:role/kitaru-execution",
    "log_group": "kitaru-jobs-9f",
    "subnets": ["subnet-1", "subnet-2"],
    "security_groups": ["sg-1"],
    "assign_public_ip": True,
    "journal_secret": None,
    "orchestrator_policy_arn": "arn:aws:iam::123456789012:policy/kitaru-orchestrator",
    "builder_policy_arn": "arn:aws:iam::123456789012:policy/kitaru-builder",
}


def test_aws_outputs_become_artifact_store_registry_and_orchestrator_settings() -> None:
    settings = stack_settings("aws_batch", AWS_OUTPUTS)
    assert settings == StackSettings(
        orchestrator="aws_batch",
        artifact_store="s3://kitaru-artifacts-1a2b",
        registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com/kitaru-images",
        settings={
            "region": "eu-west-1",
            "job_queue": "arn:aws:batch:eu-west-1:123456789012:job-queue/kitaru-queue",
            "job_definition_prefix": "kitaru-",
            "job_role_arn": "arn:aws:iam::123456789012:role/kitaru-job",
            "execution_role_arn": "arn:aws:iam::123456789012:role/kitaru-execution",
            "log_group": "kitaru-jobs-9f",
            "subnets": ["subnet-1", "subnet-2"],
            "security_groups": ["sg-1"],
            "assign_public_ip": True,
        },
    )
    flat = settings.as_dict()
    assert flat["artifact_store"] == "s3://kitaru-artifacts-1a2b"
    assert flat["job_queue"].endswith(":job-queue/kitaru-queue")
    # An optional resource that was not created does not override the user's setting.
    assert "journal_secret" not in flat
    assert "orchestrator_policy_arn" not in flat


def test_gcp_azure_and_kubernetes_outputs_map_to_their_settings() -> None:
    gcp = stack_settings(
        Flavor.GCP_CLOUD_RUN,
        {
            "artifact_store": "gs://kitaru-artifacts-5e",
            "bucket": "kitaru-artifacts-5e",
            "registry": "us-central1-docker.pkg.dev/acme/kitaru-images",
            "project": "acme",
            "region": "us-central1",
            "service_account": "kitaru-job@acme.iam.gserviceaccount.com",
            "journal_secret": "journal-url",
            "orchestrator_role": "projects/acme/roles/kitaruOrchestrator",
        },
    )
    assert gcp.as_dict() == {
        "artifact_store": "gs://kitaru-artifacts-5e",
        "registry": "us-central1-docker.pkg.dev/acme/kitaru-images",
        "project": "acme",
        "region": "us-central1",
        "service_account": "kitaru-job@acme.iam.gserviceaccount.com",
        "journal_secret": "journal-url",
    }
    azure_outputs = {name: f"<{name}>" for name in OUTPUTS[Flavor.AZURE_CONTAINER_APPS]}
    azure = stack_settings("azure_container_apps", azure_outputs)
    assert azure.artifact_store == "<artifact_store>"
    assert azure.registry == "<registry>"
    assert set(azure.settings) == {
        "storage_account",
        "storage_account_url",
        "container",
        "subscription_id",
        "resource_group",
        "location",
        "environment_id",
        "identity_id",
        "identity_client_id",
        "log_analytics_workspace_id",
    }
    k8s = stack_settings(
        "kubernetes",
        {
            "namespace": "agents",
            "service_account": "kitaru-job",
            "orchestrator_service_account": "kitaru-orchestrator",
            "orchestrator_role": "kitaru-orchestrator",
            "journal_secret": "kitaru-journal",
            "journal_secret_key": "url",
        },
    )
    # Kubernetes keeps whatever artifact store and registry the stack already has.
    assert k8s.artifact_store is None and k8s.registry is None
    assert k8s.as_dict() == {
        "namespace": "agents",
        "service_account": "kitaru-job",
        "journal_secret": "kitaru-journal",
        "journal_secret_key": "url",
    }


def test_outputs_from_another_version_of_the_program_are_an_error() -> None:
    partial = {k: v for k, v in AWS_OUTPUTS.items() if k != "job_queue"}
    with pytest.raises(
        InfraError, match="the aws_batch outputs lack job_queue; run `provision` again"
    ):
        stack_settings("aws_batch", partial)


def test_config_from_stack_settings_takes_only_infrastructure_fields() -> None:
    stack = {"region": "eu-west-1", "job_queue": "arn:...", "max_vcpus": 8, "image": "x"}
    config = config_from_settings("aws_batch", stack)
    assert config == AwsBatchConfig(region="eu-west-1", max_vcpus=8)
    assert config_for("kubernetes", None) == KubernetesConfig()
    with pytest.raises(Exception, match="not the config of flavor kubernetes"):
        config_for("kubernetes", AwsBatchConfig())


def test_the_docs_list_every_permission_granted() -> None:
    """docs/infrastructure.md is what the orchestrator authors check against."""
    text = DOCS.read_text()
    granted: list[str] = []
    for name in dir(perms):
        value = getattr(perms, name)
        if name.isupper() and isinstance(value, tuple):
            for item in value:
                if isinstance(item, str):
                    granted.append(item)
                elif isinstance(item, perms.RbacRule):
                    granted.extend(item.verbs)
                    granted.extend(item.resources)
                else:
                    granted.extend(item)
        elif name.isupper() and isinstance(value, str):
            granted.append(value)
    missing = [g for g in granted if not re.search(rf"(?<![\w/.-]){re.escape(g)}(?![\w/.-])", text)]
    assert not missing, f"docs/infrastructure.md does not mention {missing}"
    for flavor in Flavor:
        for output in OUTPUTS[flavor]:
            assert f"`{output}`" in text, output


def test_each_flavor_registers_its_program_as_an_entry_point() -> None:
    from importlib.metadata import entry_points

    from kitaru_infra._flavors import flavor_info

    registered = {e.name: e.value for e in entry_points(group="kitaru.infra")}
    assert registered == {
        f.value: f"{flavor_info(f).component_module}:{flavor_info(f).component_class}"
        for f in Flavor
    }
