"""Settings every container flavor shares: environment, secrets and the image build."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kitaru.journal import StackRecord
from kitaru.stacks import is_reference


class ContainerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    environment: dict[str, str] = Field(
        default_factory=dict, description="plain environment variables for the container"
    )
    secret_environment: dict[str, str] = Field(
        default_factory=dict,
        description="environment variables from references: env:NAME (read where the "
        "execution is submitted) or secret:NAME[#KEY] (the platform's secret store)",
    )
    python_version: str = Field(
        "3.11", description="Python version of the image (its minor version picks the wheels)"
    )
    base_image: str | None = Field(
        None,
        description="image the build starts from, with python3, venv and pip "
        "(default: the official python:<python_version>-slim)",
    )
    ca_certificates: list[str] = Field(
        default_factory=list,
        description="extra CA certificate files (PEM) to trust in the build and the "
        "container, for TLS-intercepting proxies",
    )
    repository: str | None = Field(
        None, description="image repository under the registry (default: the project's name)"
    )
    max_restarts: int = Field(
        0,
        ge=0,
        le=100,
        description="how many times an execution whose container or job died (preempted, "
        "OOM-killed, node lost) is submitted again, resuming from its last checkpoint",
    )
    restart_backoff_seconds: float = Field(
        10.0, ge=0, description="wait before the first restart; doubled for each one after"
    )

    @field_validator("secret_environment")
    @classmethod
    def _references_only(cls, value: dict[str, str]) -> dict[str, str]:
        for name, ref in value.items():
            if not is_reference(ref):
                raise ValueError(
                    f"{name}={ref!r} is not a reference; use env:VAR_NAME or secret:NAME"
                )
        return value


class ContainerFlavor:
    """A flavor whose executions run in an image built by the docker builder."""

    name: str = ""
    summary: str = ""
    settings_model: type[BaseModel] = ContainerSettings
    default_builder: str | None = "docker"
    needs_registry = True
    needs_network_journal = True

    def check(self, stack: StackRecord, settings: Any) -> None:
        from kitaru.stacks._plugins import load

        load("kitaru.orchestrators", self.name)(stack, settings).check()
