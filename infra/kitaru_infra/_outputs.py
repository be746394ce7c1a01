"""The outputs each program exports, and how they become a stack's settings.

Output names are a contract: the stack registry stores settings derived from them and a
later `provision` must produce the same names, so they never change meaning. The mapping
to settings is a pure function so it can be tested without any engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kitaru_infra._config import (
    AwsBatchConfig,
    GcpCloudRunConfig,
    InfraConfig,
    KubernetesConfig,
)
from kitaru_infra._errors import InfraError
from kitaru_infra._flavors import Flavor, parse_flavor
from kitaru_infra._permissions import K8S_JOURNAL_SECRET_KEY

OUTPUTS: dict[Flavor, tuple[str, ...]] = {
    Flavor.AWS_BATCH: (
        "artifact_store",
        "bucket",
        "registry",
        "region",
        "job_queue",
        "job_definition_prefix",
        "job_role_arn",
        "execution_role_arn",
        "log_group",
        "subnets",
        "security_groups",
        "assign_public_ip",
        "journal_secret",
        "orchestrator_policy_arn",
        "builder_policy_arn",
    ),
    Flavor.GCP_CLOUD_RUN: (
        "artifact_store",
        "bucket",
        "registry",
        "project",
        "region",
        "service_account",
        "journal_secret",
        "orchestrator_role",
    ),
    Flavor.AZURE_CONTAINER_APPS: (
        "artifact_store",
        "storage_account",
        "storage_account_url",
        "container",
        "registry",
        "subscription_id",
        "resource_group",
        "location",
        "environment_id",
        "identity_id",
        "identity_client_id",
        "log_analytics_workspace_id",
        "orchestrator_role_id",
    ),
    Flavor.KUBERNETES: (
        "namespace",
        "service_account",
        "orchestrator_service_account",
        "orchestrator_role",
        "journal_secret",
        "journal_secret_key",
    ),
}


@dataclass(frozen=True)
class StackSettings:
    """What `kitaru stack provision` writes into a stack.

    `artifact_store`, `registry` and `journal` are the stack's own fields (None: keep
    what the stack has); `settings` are flavor settings, valid for the flavor's schema in
    kitaru_stacks (`kitaru stack flavors FLAVOR`).
    """

    orchestrator: str
    artifact_store: str | None
    registry: str | None
    settings: dict[str, Any] = field(default_factory=dict)
    journal: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """One flat dict: every setting plus `artifact_store`, `registry` and `journal`
        when known."""
        flat: dict[str, Any] = {}
        for key in ("artifact_store", "registry", "journal"):
            value = getattr(self, key)
            if value is not None:
                flat[key] = value
        flat.update(self.settings)
        return flat


# The stack fields and flavor settings each flavor's outputs fill in. Everything else a
# program exports (policy ARNs, roles, subnets) is a fact for the user, not a setting.
PROVIDES: dict[Flavor, frozenset[str]] = {
    Flavor.AWS_BATCH: frozenset(
        {
            "artifact_store",
            "registry",
            "repository",
            "region",
            "job_queue",
            "job_definition_prefix",
            "job_role_arn",
            "execution_role_arn",
            "log_group",
            "assign_public_ip",
        }
    ),
    Flavor.GCP_CLOUD_RUN: frozenset(
        {"artifact_store", "registry", "project", "region", "service_account"}
    ),
    Flavor.AZURE_CONTAINER_APPS: frozenset(
        {
            "artifact_store",
            "registry",
            "subscription_id",
            "resource_group",
            "environment_id",
            "location",
            "identity",
            "environment",
            "log_analytics_workspace_id",
        }
    ),
    Flavor.KUBERNETES: frozenset({"namespace", "service_account"}),
}


def journal_reference(flavor: str | Flavor, config: InfraConfig) -> str | None:
    """The `secret:` reference the stack's journal becomes when the program wires a
    secret holding the journal URL (None: the stack keeps its own journal)."""
    if isinstance(config, AwsBatchConfig) and config.journal_secret_arn:
        return f"secret:{config.journal_secret_arn}"
    if isinstance(config, GcpCloudRunConfig) and config.journal_secret:
        return f"secret:{config.journal_secret}"
    if isinstance(config, KubernetesConfig) and config.journal_url is not None:
        return f"secret:{config.journal_secret_name}#{K8S_JOURNAL_SECRET_KEY}"
    return None


def stack_settings(
    flavor: str | Flavor, outputs: Mapping[str, Any], config: InfraConfig | None = None
) -> StackSettings:
    """Map a program's outputs to the fields and settings of a stack of `flavor`.

    `config` is what the program ran with; it tells whether the program wired the
    journal secret. A missing output is an error: it means the state comes from another
    version of the program. Outputs whose value is None (an optional resource that was
    not created) set nothing.
    """
    flavor = parse_flavor(flavor)
    missing = [name for name in OUTPUTS[flavor] if name not in outputs]
    if missing:
        raise InfraError(
            f"the {flavor} outputs lack {', '.join(missing)}; run `provision` again to "
            "update the infrastructure to this version of Kitaru"
        )
    journal = journal_reference(flavor, config) if config is not None else None
    artifact_store = outputs.get("artifact_store")
    registry = outputs.get("registry")
    settings: dict[str, Any]
    if flavor is Flavor.AWS_BATCH:
        # An ECR repository URL is host/repository, and the builder pushes to
        # registry/repository: the stack's images all go to the one repository the
        # program made (and the builder policy allows), told apart by their tags.
        host, _, repository = str(registry).partition("/")
        registry = host
        settings = {
            "repository": repository or None,
            **_pick(
                outputs,
                "region",
                "job_queue",
                "job_definition_prefix",
                "job_role_arn",
                "execution_role_arn",
                "log_group",
                "assign_public_ip",
            ),
        }
    elif flavor is Flavor.GCP_CLOUD_RUN:
        settings = _pick(outputs, "project", "region", "service_account")
    elif flavor is Flavor.AZURE_CONTAINER_APPS:
        account_url = outputs["storage_account_url"]
        settings = {
            **_pick(outputs, "subscription_id", "resource_group", "environment_id", "location"),
            "identity": outputs["identity_id"],
            # Where `executions logs --orchestrator` and failure reasons are read.
            "log_analytics_workspace_id": outputs.get("log_analytics_workspace_id"),
            # The container finds the storage account and signs in as the job identity
            # (azure-identity's DefaultAzureCredential reads AZURE_CLIENT_ID).
            "environment": {
                "AZURE_STORAGE_ACCOUNT_URL": str(account_url).rstrip("/"),
                "AZURE_CLIENT_ID": outputs["identity_client_id"],
            },
        }
    else:
        settings = _pick(outputs, "namespace", "service_account")
    return StackSettings(
        orchestrator=flavor.value,
        artifact_store=artifact_store,
        registry=registry,
        settings={k: v for k, v in settings.items() if v is not None},
        journal=journal,
    )


def _pick(outputs: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: outputs[name] for name in names}
