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
    settings = stack_settings("aws_batch", AWS_OUTPUTS, AwsBatchConfig(region="eu-west-1"))
    assert settings == StackSettings(
        orchestrator="aws_batch",
        artifact_store="s3://kitaru-artifacts-1a2b",
        # Every image of the stack goes to the one repository the program made (and the
        # builder policy allows): registry host + repository setting.
        registry="123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        settings={
            "repository": "kitaru-images",
            "region": "eu-west-1",
            "job_queue": "arn:aws:batch:eu-west-1:123456789012:job-queue/kitaru-queue",
            "job_definition_prefix": "kitaru-",
            "job_role_arn": "arn:aws:iam::123456789012:role/kitaru-job",
            "execution_role_arn": "arn:aws:iam::123456789012:role/kitaru-execution",
            "log_group": "kitaru-jobs-9f",
            "assign_public_ip": True,
        },
    )
    flat = settings.as_dict()
    assert flat["artifact_store"] == "s3://kitaru-artifacts-1a2b"
    assert flat["job_queue"].endswith(":job-queue/kitaru-queue")
    # No journal secret was named: the stack keeps its own journal.
    assert "journal" not in flat
    # Facts about the infrastructure are not settings.
    assert not {"orchestrator_policy_arn", "subnets", "security_groups", "bucket"} & set(flat)
    secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:journal-AbC"
    with_secret = stack_settings(
        "aws_batch",
        {**AWS_OUTPUTS, "journal_secret": secret},
        AwsBatchConfig(region="eu-west-1", journal_secret_arn=secret),
    )
    assert with_secret.journal == f"secret:{secret}"


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
        config_for("gcp_cloud_run", {"project": "acme-ai", "journal_secret": "journal-url"}),
    )
    assert gcp.as_dict() == {
        "artifact_store": "gs://kitaru-artifacts-5e",
        "registry": "us-central1-docker.pkg.dev/acme/kitaru-images",
        "journal": "secret:journal-url",
        "project": "acme",
        "region": "us-central1",
        "service_account": "kitaru-job@acme.iam.gserviceaccount.com",
    }
    azure_outputs = {name: f"<{name}>" for name in OUTPUTS[Flavor.AZURE_CONTAINER_APPS]}
    azure_outputs["storage_account_url"] = "https://kitaruart3b9c.blob.core.windows.net/"
    azure = stack_settings("azure_container_apps", azure_outputs)
    assert azure.artifact_store == "<artifact_store>"
    assert azure.registry == "<registry>"
    assert azure.settings == {
        "subscription_id": "<subscription_id>",
        "resource_group": "<resource_group>",
        "environment_id": "<environment_id>",
        "log_analytics_workspace_id": "<log_analytics_workspace_id>",
        "location": "<location>",
        "identity": "<identity_id>",
        "environment": {
            "AZURE_STORAGE_ACCOUNT_URL": "https://kitaruart3b9c.blob.core.windows.net",
            "AZURE_CLIENT_ID": "<identity_client_id>",
        },
    }
    k8s_outputs = {
        "namespace": "agents",
        "service_account": "kitaru-job",
        "orchestrator_service_account": "kitaru-orchestrator",
        "orchestrator_role": "kitaru-orchestrator",
        "journal_secret": "kitaru-journal",
        "journal_secret_key": "url",
    }
    k8s = stack_settings("kubernetes", k8s_outputs, KubernetesConfig(namespace="agents"))
    # Kubernetes keeps whatever artifact store and registry the stack already has, and
    # its journal too while the program made no journal secret.
    assert k8s.artifact_store is None and k8s.registry is None and k8s.journal is None
    assert k8s.as_dict() == {"namespace": "agents", "service_account": "kitaru-job"}
    wired = stack_settings(
        "kubernetes",
        k8s_outputs,
        config_for("kubernetes", {"journal_url": "postgresql://kitaru@db/kitaru"}),
    )
    assert wired.journal == "secret:kitaru-journal#url"


@pytest.mark.parametrize("flavor", list(Flavor))
def test_the_mapped_settings_are_valid_stack_settings_and_match_what_provision_promises(
    flavor: Flavor,
) -> None:
    """What provision writes must pass the flavor's own schema (kitaru_stacks)."""
    from kitaru_infra._outputs import PROVIDES

    from kitaru.stacks import load_flavor

    outputs = {name: f"x-{name}" for name in OUTPUTS[flavor]}
    outputs["assign_public_ip"] = True
    if "registry" in outputs:
        outputs["registry"] = "registry.example.com/kitaru-images"
    mapped = stack_settings(flavor, outputs)
    load_flavor(flavor.value).settings_model.model_validate(mapped.settings)
    provided = set(mapped.settings) | {
        k for k in ("artifact_store", "registry") if getattr(mapped, k) is not None
    }
    assert provided == PROVIDES[flavor]


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
    """`kitaru stack provision` finds a flavor's program through the `kitaru.infra`
    entry points; loading one imports no Pulumi."""
    import subprocess
    import sys
    from importlib.metadata import entry_points

    registered = {e.name: e.load() for e in entry_points(group="kitaru.infra")}
    assert sorted(registered) == sorted(f.value for f in Flavor)
    for name, program in registered.items():
        assert program.flavor == name
        assert "name_prefix" in program.input_fields()
    script = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "[e.load() for e in entry_points(group='kitaru.infra')]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi')))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr
