"""preview / provision / destroy a stack's infrastructure with Pulumi's Automation API.

The program runs inline (in this process); the Pulumi CLI is the engine that diffs it
against the state and calls the cloud. State lives in a local file backend under
`$KITARU_HOME/pulumi` unless a backend URL is given (`s3://...`, `gs://...`,
`azblob://...`, `file://...`, or a Pulumi Cloud URL).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitaru._config import home
from kitaru_infra._config import (
    AwsBatchConfig,
    AzureContainerAppsConfig,
    GcpCloudRunConfig,
    InfraConfig,
    KubernetesConfig,
    config_for,
)
from kitaru_infra._errors import (
    CLI_INSTALL_HINT,
    InfraConfigError,
    InfraError,
    MissingExtraError,
    PulumiCliMissingError,
)
from kitaru_infra._flavors import Flavor, flavor_info, parse_flavor
from kitaru_infra._program import program_for

if TYPE_CHECKING:
    from pulumi import automation as auto

PROJECT = "kitaru"
OnOutput = Callable[[str], None]
_STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_DIY_SCHEMES = ("file://", "s3://", "gs://", "azblob://", "postgres://")


@dataclass(frozen=True)
class ResourceChange:
    """One step of a preview: what the engine would do to one resource."""

    op: str
    type: str
    name: str


@dataclass(frozen=True)
class PreviewResult:
    """What `provision` would change, without changing anything."""

    flavor: str
    stack_name: str
    changes: dict[str, int]
    steps: list[ResourceChange] = field(default_factory=list)
    output: str = ""

    @property
    def has_changes(self) -> bool:
        return any(count for op, count in self.changes.items() if op != "same")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_backend_url() -> str:
    """The local file backend under KITARU_HOME (created on first use)."""
    path = home() / "pulumi"
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def is_default_backend(backend_url: str | None) -> bool:
    """Whether `backend_url` is this machine's default backend (a stack remembers the
    URL it was provisioned with, so the default comes back spelled out)."""
    return backend_url is None or backend_url == (home() / "pulumi").as_uri()


def preview(
    flavor: str | Flavor,
    stack_name: str,
    config: Mapping[str, Any] | InfraConfig | None = None,
    backend_url: str | None = None,
    *,
    on_output: OnOutput | None = None,
) -> PreviewResult:
    """Show what `provision` would create, change or delete, changing nothing."""
    steps: list[ResourceChange] = []

    def on_event(event: Any) -> None:
        change = step_of(event)
        if change is not None:
            steps.append(change)

    with _stack("preview", flavor, stack_name, config, backend_url) as stack:
        result = stack.preview(on_output=on_output, on_event=on_event, color="never")
    return PreviewResult(
        flavor=parse_flavor(flavor).value,
        stack_name=stack_name,
        changes={str(getattr(op, "value", op)): n for op, n in result.change_summary.items()},
        steps=steps,
        output=result.stdout,
    )


def provision(
    flavor: str | Flavor,
    stack_name: str,
    config: Mapping[str, Any] | InfraConfig | None = None,
    backend_url: str | None = None,
    *,
    on_output: OnOutput | None = None,
) -> dict[str, Any]:
    """Create or update the infrastructure; return the program's outputs by name
    (secret outputs included, unwrapped)."""
    with _stack("provision", flavor, stack_name, config, backend_url) as stack:
        result = stack.up(on_output=on_output, color="never")
    return {name: value.value for name, value in result.outputs.items()}


def destroy(
    flavor: str | Flavor,
    stack_name: str,
    config: Mapping[str, Any] | InfraConfig | None = None,
    backend_url: str | None = None,
    *,
    on_output: OnOutput | None = None,
) -> None:
    """Delete everything `provision` created for this stack."""
    with _stack("destroy", flavor, stack_name, config, backend_url, create=False) as stack:
        stack.destroy(on_output=on_output, color="never")


def step_of(event: Any) -> ResourceChange | None:
    """The resource step an engine event announces, if it announces one.

    Component resources and the stack itself are steps too, but say nothing a reviewer
    acts on, so only provider resources are kept.
    """
    pre = getattr(event, "resource_pre_event", None)
    if pre is None or pre.metadata is None:
        return None
    meta = pre.metadata
    if meta.type.startswith(("pulumi:", "kitaru:")):
        return None
    return ResourceChange(
        op=str(getattr(meta.op, "value", meta.op)),
        type=meta.type,
        name=meta.urn.rsplit("::", 1)[-1],
    )


def pulumi_cli() -> Path:
    """The Pulumi CLI this machine has, or PulumiCliMissingError saying how to get it."""
    found = shutil.which("pulumi")
    if found:
        return Path(found)
    # The installer puts the CLI here and edits shell profiles, which a non-login shell
    # (CI, cron, an IDE) may not have read.
    fallback = Path.home() / ".pulumi" / "bin" / "pulumi"
    if fallback.is_file() and os.access(fallback, os.X_OK):
        return fallback
    raise PulumiCliMissingError(f"the Pulumi CLI is not installed; {CLI_INSTALL_HINT}")


def _stack_config(config: InfraConfig) -> dict[str, str]:
    if isinstance(config, AwsBatchConfig):
        return {"aws:region": config.region}
    if isinstance(config, GcpCloudRunConfig):
        return {"gcp:project": config.project, "gcp:region": config.region}
    if isinstance(config, AzureContainerAppsConfig):
        return {"azure-native:location": config.location}
    if isinstance(config, KubernetesConfig) and config.context:
        return {"kubernetes:context": config.context}
    return {}


def _secrets_env(backend: str, is_default: bool) -> dict[str, str]:
    """Environment that lets the engine encrypt secrets in the state."""
    if os.environ.get("PULUMI_CONFIG_PASSPHRASE") or os.environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        return {}
    if is_default:
        # A passphrase only this user can read, kept beside the state it protects, so the
        # default backend works with no setup.
        path = home() / "pulumi" / "passphrase"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        return {"PULUMI_CONFIG_PASSPHRASE_FILE": str(path)}
    if backend.startswith(_DIY_SCHEMES):
        raise InfraConfigError(
            f"the Pulumi backend {backend} keeps secrets encrypted with a passphrase; set "
            "PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) to the one your "
            "team uses for it"
        )
    return {}


@contextmanager
def _stack(
    action: str,
    flavor: str | Flavor,
    stack_name: str,
    config: Mapping[str, Any] | InfraConfig | None,
    backend_url: str | None,
    *,
    create: bool = True,
) -> Iterator[auto.Stack]:
    flavor = parse_flavor(flavor)
    validated = config_for(flavor, config)
    if not _STACK_NAME.match(stack_name):
        raise InfraConfigError(
            f"stack name {stack_name!r} cannot name a Pulumi stack; use letters, digits, "
            "'-', '_' or '.'"
        )
    program = program_for(flavor, validated)  # names the extra to install, if missing
    cli = pulumi_cli()
    from pulumi import automation as auto

    is_default = is_default_backend(backend_url)
    backend = default_backend_url() if is_default else str(backend_url)
    env = _secrets_env(backend, is_default=is_default)
    root = cli.parent.parent if cli.parent.name == "bin" else None
    try:
        command = auto.PulumiCommand(root=str(root)) if root else auto.PulumiCommand()
        opts = auto.LocalWorkspaceOptions(
            pulumi_command=command,
            project_settings=auto.ProjectSettings(
                name=PROJECT, runtime="python", backend=auto.ProjectBackend(url=backend)
            ),
            env_vars=env,
        )
        if create:
            stack = auto.create_or_select_stack(
                stack_name=stack_name, project_name=PROJECT, program=program, opts=opts
            )
        else:
            stack = auto.select_stack(
                stack_name=stack_name, project_name=PROJECT, program=program, opts=opts
            )
        for key, value in _stack_config(validated).items():
            stack.set_config(key, auto.ConfigValue(value=value))
        provider = flavor_info(flavor).provider
        stack.workspace.install_plugin(provider.plugin, "v" + _version(provider.distribution))
        yield stack
    except auto.StackNotFoundError:
        raise InfraError(
            f"nothing was provisioned for stack {stack_name!r} in {backend}; nothing to {action}"
        ) from None
    except auto.ConcurrentUpdateError:
        raise InfraError(
            f"another preview, provision or destroy of stack {stack_name!r} is running; "
            "wait for it to finish (or run `pulumi cancel` if it crashed)"
        ) from None
    except auto.CommandError as exc:
        raise InfraError(f"{action} of stack {stack_name!r} failed: {_engine_said(exc)}") from None


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise MissingExtraError(f"{distribution} is not installed") from None


def _engine_said(exc: Exception, lines: int = 15) -> str:
    # A CommandError's text is "code: N / stdout: ... / stderr: ..."; the engine's own
    # diagnostics are at the end of stderr (or stdout when stderr is empty).
    text = str(exc)
    code = re.search(r"code: (-?\d+)", text)
    out, _, err = text.partition(" stderr: ")
    said = err.strip() or out.partition(" stdout: ")[2].strip() or text.strip()
    tail = "\n".join(said.splitlines()[-lines:])
    return f"pulumi exited {code.group(1) if code else '?'}:\n{tail}"
