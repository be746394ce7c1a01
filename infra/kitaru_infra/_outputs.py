"""The outputs each program exports, and how they become a stack's settings.

Output names are a contract: the stack registry stores settings derived from them and a
later `provision` must produce the same names, so they never change meaning. The mapping
to settings is a pure function so it can be tested without any engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kitaru_infra._errors import InfraError
from kitaru_infra._flavors import Flavor, parse_flavor

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

# Outputs that are not orchestrator settings: the stack-level artifact store and registry
# (their own fields) and facts about the infrastructure that no component reads.
_NOT_SETTINGS = frozenset(
    {
        "artifact_store",
        "registry",
        "bucket",
        "orchestrator_policy_arn",
        "builder_policy_arn",
        "orchestrator_role",
        "orchestrator_role_id",
        "orchestrator_service_account",
    }
)


@dataclass(frozen=True)
class StackSettings:
    """What `kitaru stack provision` writes into a stack.

    `artifact_store` and `registry` are the stack's own fields (None: keep what the stack
    has); `settings` are the orchestrator settings (`--set key=value`).
    """

    orchestrator: str
    artifact_store: str | None
    registry: str | None
    settings: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """One flat dict: every setting plus `artifact_store` and `registry` when known."""
        flat: dict[str, Any] = {}
        if self.artifact_store is not None:
            flat["artifact_store"] = self.artifact_store
        if self.registry is not None:
            flat["registry"] = self.registry
        flat.update(self.settings)
        return flat


def stack_settings(flavor: str | Flavor, outputs: Mapping[str, Any]) -> StackSettings:
    """Map a program's outputs to the settings of a stack of `flavor`.

    Outputs whose value is None (an optional resource that was not created) are left out,
    so they do not override a setting the user made. A missing output is an error: it
    means the state comes from another version of the program.
    """
    flavor = parse_flavor(flavor)
    missing = [name for name in OUTPUTS[flavor] if name not in outputs]
    if missing:
        raise InfraError(
            f"the {flavor} outputs lack {', '.join(missing)}; run `provision` again to "
            "update the infrastructure to this version of Kitaru"
        )
    settings = {
        name: outputs[name]
        for name in OUTPUTS[flavor]
        if name not in _NOT_SETTINGS and outputs[name] is not None
    }
    return StackSettings(
        orchestrator=flavor.value,
        artifact_store=outputs.get("artifact_store"),
        registry=outputs.get("registry"),
        settings=settings,
    )
