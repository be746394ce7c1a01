"""Stacks: where executions run.

A stack names an orchestrator flavor (`local`, `docker`, `kubernetes`, `aws_batch`,
`gcp_cloud_run`, `azure_container_apps`), an artifact store, optionally a journal, a
container registry and a builder, plus the flavor's settings. The `local` stack is
built in and is the default. Orchestrators, builders and flavors other than `local`
come from the member distributions through entry points (`kitaru.orchestrators`,
`kitaru.builders`, `kitaru.stacks`, and `kitaru.infra` for the infrastructure programs
that `kitaru stack provision` runs); this package holds only their contracts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kitaru.stacks._background import resolved_environment
    from kitaru.stacks._contracts import (
        Builder,
        BuildRequest,
        BuiltImage,
        ContainerRegistry,
        InfraProgram,
        Orchestrator,
        ProvisionedStack,
        RunState,
        RunStatus,
        SubmitRequest,
    )
    from kitaru.stacks._flavor import (
        LocalSettings,
        StackFlavor,
        describe_flavor,
        installed_flavors,
        load_flavor,
    )
    from kitaru.stacks._registry_probe import probe_registry
    from kitaru.stacks._secrets import SecretRef, is_reference, looks_like_secret
    from kitaru.stacks._stacks import (
        LOCAL,
        active_name,
        chosen_name,
        delete,
        describe,
        get_stack,
        list_stacks,
        parse_sets,
        refuse_unfinished,
        register,
        resolve,
        use,
    )

# Where each export lives; loaded on first use, so `flow.run()` on the local stack never
# imports pydantic models or plugins.
_EXPORTS = {
    "Builder": "_contracts",
    "BuildRequest": "_contracts",
    "BuiltImage": "_contracts",
    "ContainerRegistry": "_contracts",
    "InfraProgram": "_contracts",
    "ProvisionedStack": "_contracts",
    "Orchestrator": "_contracts",
    "RunState": "_contracts",
    "RunStatus": "_contracts",
    "SubmitRequest": "_contracts",
    "LocalSettings": "_flavor",
    "StackFlavor": "_flavor",
    "describe_flavor": "_flavor",
    "installed_flavors": "_flavor",
    "load_flavor": "_flavor",
    "resolved_environment": "_background",
    "probe_registry": "_registry_probe",
    "SecretRef": "_secrets",
    "is_reference": "_secrets",
    "looks_like_secret": "_secrets",
    "LOCAL": "_resolve",
    "active_name": "_resolve",
    "chosen_name": "_resolve",
    "get_stack": "_resolve",
    "list_stacks": "_resolve",
    "resolve": "_resolve",
    "delete": "_stacks",
    "describe": "_stacks",
    "parse_sets": "_stacks",
    "register": "_stacks",
    "refuse_unfinished": "_stacks",
    "use": "_stacks",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kitaru.stacks' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"kitaru.stacks.{module}"), name)


__all__ = [
    "LOCAL",
    "BuildRequest",
    "Builder",
    "BuiltImage",
    "ContainerRegistry",
    "InfraProgram",
    "LocalSettings",
    "Orchestrator",
    "ProvisionedStack",
    "RunState",
    "RunStatus",
    "SecretRef",
    "StackFlavor",
    "SubmitRequest",
    "active_name",
    "chosen_name",
    "delete",
    "describe",
    "describe_flavor",
    "get_stack",
    "installed_flavors",
    "is_reference",
    "list_stacks",
    "load_flavor",
    "looks_like_secret",
    "parse_sets",
    "probe_registry",
    "refuse_unfinished",
    "register",
    "resolve",
    "resolved_environment",
    "use",
]
