"""The small contracts a stack's components fulfil.

The core only talks to these protocols; implementations live in the member
distributions (`kitaru_orchestrators`, `kitaru_builders`, `kitaru_infra`) and are found
through entry points when a stack needs them. Settings are validated when a component is
built, so a component never sees a setting its flavor's schema did not accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from kitaru.stacks._secrets import SecretRef

# `missing`: the platform no longer knows the run (deleted, expired, never there);
# `unknown`: it answered with a state kitaru does not know.
RunState = Literal["pending", "running", "succeeded", "failed", "cancelled", "missing", "unknown"]


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One run of the execution entrypoint (`python -m kitaru run-execution ID`) in an image.

    `environment` holds plain values; `secrets` maps variable names to references that
    the orchestrator resolves where the run starts (env refs on the submitting machine,
    platform secrets by the platform).
    """

    exec_id: str
    flow: str
    stack: str
    image: str | None
    command: tuple[str, ...]
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, SecretRef] = field(default_factory=dict)
    working_dir: str | None = None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A run's state on its platform; `detail` is the platform's own words for why
    (an image that cannot be pulled, a spot interruption, an OOM kill)."""

    state: RunState
    detail: str = ""
    exit_code: int | None = None


class Orchestrator(Protocol):
    """Runs executions somewhere: submit, report, fetch logs, cancel."""

    flavor: str

    def check(self) -> None:
        """Fail, naming the setting at fault and the fix, unless the platform answers."""

    def submit(self, request: SubmitRequest) -> str:
        """Start the run; return the orchestrator's id for it (container id, Job name, ARN)."""

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        """Whether `run_id` has the shape of this orchestrator's run ids and names a run
        started for `exec_id`, as far as the id (or one platform call) tells. A run id is
        read from a record, which is data: nothing is asked about, read from or stopped
        for a run id that is not (kitaru/stacks/_runs.py)."""

    def status(self, run_id: str) -> RunStatus: ...

    def logs(self, run_id: str) -> str:
        """What the run wrote to stdout and stderr, as far as the platform keeps it."""

    def cancel(self, run_id: str) -> None:
        """Stop the run; stopping one that already ended is not an error."""


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What goes into an image: the project (with its lock) and the runtime extras the
    container needs to reach the stack's journal and artifact store.

    `recipe` says what the image runs: `flow` (orchestrators give the command of each
    run) or `server` (`kitaru server start`, as an unprivileged user). `tags` are more
    names for the image in `repository` (a release number), pushed with it.
    """

    project_root: Path
    repository: str
    extras: tuple[str, ...] = ()
    recipe: Literal["flow", "server"] = "flow"
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BuiltImage:
    """An image in the registry: `ref` pins it by digest (`repo@sha256:...`)."""

    ref: str
    digest: str
    tag: str
    content_hash: str
    reused: bool
    # A hash of the locked requirements installed in the image (what `uv lock` pinned).
    lock_hash: str = ""


class Builder(Protocol):
    """Builds the image an orchestrator runs and pushes it to the stack's registry."""

    flavor: str

    def build(
        self, request: BuildRequest, progress: Callable[[str], None] | None = None
    ) -> BuiltImage:
        """Build (or reuse, when the lock and source hash are unchanged) and push; what
        takes a while (resolving, each build step, the push) is told to `progress`."""

    def project_files(self, project_root: Path) -> list[Path]:
        """The project's files that go into the image, in a stable order (a deployment
        records their hashes to tell later whether the local code still matches)."""


class ContainerRegistry(Protocol):
    """Where images are pushed and pulled from (`host[:port]/path`)."""

    uri: str

    def check(self) -> None:
        """Fail with the URI and what to check unless the registry answers."""

    def credentials(self) -> dict[str, str] | None:
        """Username and password for a push, or None to use the engine's own login."""

    def digest(self, ref: str) -> str | None:
        """The digest of a pushed `repo:tag`, or None if the registry does not have it."""


@dataclass(frozen=True, slots=True)
class ProvisionedStack:
    """What provisioning a stack's infrastructure gives the stack: its own fields (None:
    keep what the stack has), flavor settings valid for the flavor's schema, and every
    output the program exported (facts such as the policy to attach to people and CI)."""

    artifact_store: str | None
    registry: str | None
    journal: str | None
    settings: dict[str, Any]
    outputs: dict[str, Any]


class InfraProgram(Protocol):
    """The infrastructure program of one stack flavor, registered under the `kitaru.infra`
    entry points: what `kitaru stack preview / provision / destroy` drive.

    `inputs` are the program's settings (`--set` on those commands), already resolved
    (no `env:` references). Engine progress goes to `on_output`, one line at a time.
    """

    flavor: str

    def input_fields(self) -> dict[str, str]:
        """The settings the program takes, each with its description."""

    def check_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Fail with a usage error naming the setting at fault unless `inputs` are valid."""

    def provides(self) -> frozenset[str]:
        """The flavor settings and stack fields (`artifact_store`, `registry`) that
        provisioning fills in."""

    def journal_reference(self, inputs: Mapping[str, Any]) -> str | None:
        """The `secret:` reference the stack's journal becomes, if the program wires one."""

    def default_backend_url(self) -> str:
        """Where the state goes when the user names no backend."""

    def preview(
        self,
        stack_name: str,
        inputs: Mapping[str, Any],
        backend_url: str | None,
        on_output: Callable[[str], None] | None,
    ) -> dict[str, Any]:
        """What provisioning would change: `{"changes": {op: n}, "steps": [...]}`."""

    def provision(
        self,
        stack_name: str,
        inputs: Mapping[str, Any],
        backend_url: str | None,
        on_output: Callable[[str], None] | None,
    ) -> ProvisionedStack:
        """Create or update the infrastructure; what the stack gets from it."""

    def stack_settings(
        self, outputs: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> ProvisionedStack:
        """Map the program's outputs to the stack (what `provision` returns)."""

    def destroy(
        self,
        stack_name: str,
        inputs: Mapping[str, Any],
        backend_url: str | None,
        on_output: Callable[[str], None] | None,
    ) -> None:
        """Delete everything provisioning created."""
