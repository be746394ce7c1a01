"""Kubernetes: what the `kubernetes` orchestrator (a batch/v1 Job per execution) needs."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from kitaru_infra import _permissions as perms
from kitaru_infra._config import KubernetesConfig


class KubernetesInfra(pulumi.ComponentResource):
    """A namespace; a service account for the execution pods with no API access at all;
    an orchestrator service account bound to a Role with exactly the Job operations; and
    the secret the pods read the journal URL from (when a URL is given).
    """

    outputs: dict[str, pulumi.Input[Any]]

    def __init__(
        self, name: str, config: KubernetesConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kitaru:infra:Kubernetes", name, None, opts)
        p = config.name_prefix
        labels = {"app.kubernetes.io/managed-by": "kitaru", **config.labels}
        child = pulumi.ResourceOptions(parent=self)

        namespace: pulumi.Input[str] = config.namespace
        if config.create_namespace:
            namespace = k8s.core.v1.Namespace(
                f"{p}-namespace",
                metadata={"name": config.namespace, "labels": labels},
                opts=child,
            ).metadata.name

        def meta(resource_name: str) -> dict[str, Any]:
            return {"name": resource_name, "namespace": namespace, "labels": labels}

        job_account = k8s.core.v1.ServiceAccount(
            f"{p}-job",
            metadata=meta(f"{p}-job"),
            # Execution pods talk to the journal and the artifact store, never to the
            # Kubernetes API: no token mounted.
            automount_service_account_token=False,
            opts=child,
        )
        orchestrator_account = k8s.core.v1.ServiceAccount(
            f"{p}-orchestrator", metadata=meta(f"{p}-orchestrator"), opts=child
        )
        role = k8s.rbac.v1.Role(
            f"{p}-orchestrator",
            metadata=meta(f"{p}-orchestrator"),
            rules=[
                {
                    "api_groups": list(rule.api_groups),
                    "resources": list(rule.resources),
                    "verbs": list(rule.verbs),
                }
                for rule in perms.K8S_ORCHESTRATOR_RULES
            ],
            opts=child,
        )
        k8s.rbac.v1.RoleBinding(
            f"{p}-orchestrator",
            metadata=meta(f"{p}-orchestrator"),
            role_ref={
                "api_group": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role.metadata.name,
            },
            subjects=[
                {
                    "kind": "ServiceAccount",
                    "name": orchestrator_account.metadata.name,
                    "namespace": namespace,
                }
            ],
            opts=child,
        )
        if config.journal_url is not None:
            k8s.core.v1.Secret(
                f"{p}-journal",
                metadata=meta(config.journal_secret_name),
                type="Opaque",
                string_data={
                    perms.K8S_JOURNAL_SECRET_KEY: pulumi.Output.secret(
                        config.journal_url.get_secret_value()
                    )
                },
                opts=child,
            )

        self.outputs = {
            "namespace": namespace,
            "service_account": job_account.metadata.name,
            "orchestrator_service_account": orchestrator_account.metadata.name,
            "orchestrator_role": role.metadata.name,
            "journal_secret": config.journal_secret_name,
            "journal_secret_key": perms.K8S_JOURNAL_SECRET_KEY,
        }
        self.register_outputs(self.outputs)
