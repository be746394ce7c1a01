"""Stacks: where executions run.

A stack names an orchestrator flavor (`local`, `docker`, `kubernetes`, `aws_batch`,
`gcp_cloud_run`, `azure_container_apps`), an artifact store, optionally a journal, a
container registry and a builder, plus the flavor's settings. The `local` stack is
built in and is the default. Orchestrators, builders and flavors other than `local`
come from the member distributions through entry points (`kitaru.orchestrators`,
`kitaru.builders`, `kitaru.stacks`); this package holds only their contracts.
"""

from __future__ import annotations

from kitaru.stacks._contracts import (
    Builder,
    BuildRequest,
    BuiltImage,
    ContainerRegistry,
    Orchestrator,
    RunState,
    RunStatus,
    SubmitRequest,
)
from kitaru.stacks._flavor import LocalSettings, StackFlavor, installed_flavors, load_flavor
from kitaru.stacks._secrets import SecretRef, is_reference, looks_like_secret
from kitaru.stacks._stacks import (
    LOCAL,
    active_name,
    delete,
    describe,
    get_stack,
    list_stacks,
    register,
    resolve,
    use,
)

__all__ = [
    "LOCAL",
    "BuildRequest",
    "Builder",
    "BuiltImage",
    "ContainerRegistry",
    "LocalSettings",
    "Orchestrator",
    "RunState",
    "RunStatus",
    "SecretRef",
    "StackFlavor",
    "SubmitRequest",
    "active_name",
    "delete",
    "describe",
    "get_stack",
    "installed_flavors",
    "is_reference",
    "list_stacks",
    "load_flavor",
    "looks_like_secret",
    "register",
    "resolve",
    "use",
]
