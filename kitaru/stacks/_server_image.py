"""The Kitaru server's container image, built by a stack's builder (`kitaru server
build-image`).

The builder gets a generated project with nothing of its own to install, the `server`
recipe (`kitaru server start` as an unprivileged user) and the extras the server needs:
kitaru itself comes from the wheels every image gets. The project is the same bytes
every time and the builder tags images by a hash of their inputs, so an unchanged
kitaru, set of extras, base image and recipe reuse the image already in the registry.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kitaru._errors import KitaruUsageError
from kitaru.journal import Journal, StackRecord

DEFAULT_REPOSITORY = "kitaru-server"
# What the image can carry: the server, the PostgreSQL journal, the artifact stores' clients.
IMAGE_EXTRAS = ("server", "postgres", "aws", "gcp", "azure")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_PATH = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")

PYPROJECT = """\
[project]
name = "kitaru-server-image"
version = "0"
requires-python = ">=3.11"
dependencies = []
"""

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ServerImage:
    """A pushed server image: `ref` is `repository@digest`; `tag` is the content-hash tag."""

    stack: str
    repository: str
    digest: str
    ref: str
    tag: str
    tags: tuple[str, ...]
    extras: tuple[str, ...]
    reused: bool

    def helm_values(self) -> dict[str, str]:
        """The chart's values that run this image (infra/helm/kitaru-server)."""
        return {"image.repository": self.repository, "image.digest": self.digest}

    def helm_set(self) -> str:
        return " ".join(f"--set {key}={value}" for key, value in self.helm_values().items())


def image_extras(stack: StackRecord, requested: Iterable[str] | None) -> tuple[str, ...]:
    """The extras to install: those asked for (the server's always), else the server's,
    PostgreSQL's and the client of the stack's artifact store."""
    from kitaru.stacks._submit import runtime_extras

    if requested is None:
        chosen = {"server", "postgres", *runtime_extras(stack)}
    else:
        chosen = {name.strip() for name in requested if name.strip()} | {"server"}
        unknown = sorted(chosen - set(IMAGE_EXTRAS))
        if unknown:
            raise KitaruUsageError(
                f"--extras: {', '.join(unknown)} cannot go into the server image; choose "
                f"from {', '.join(IMAGE_EXTRAS)} (e.g. --extras server,postgres,aws)"
            )
    return tuple(name for name in IMAGE_EXTRAS if name in chosen)


def build_server_image(
    journal: Journal,
    *,
    stack: str | None = None,
    extras: Iterable[str] | None = None,
    repository: str = DEFAULT_REPOSITORY,
    tags: Iterable[str] = (),
    progress: Progress | None = None,
) -> ServerImage:
    """Build (or reuse) the server image on the stack's builder and push it."""
    from kitaru.stacks import _resolve
    from kitaru.stacks._contracts import BuildRequest
    from kitaru.stacks._submit import make_builder

    target = _resolve.resolve(journal, stack)
    _check_stack(target)
    extra_tags = tuple(tags)
    for tag in extra_tags:
        if not _TAG.match(tag):
            raise KitaruUsageError(
                f"--tag {tag!r} is not a valid image tag; use letters, digits, '_', '.' and "
                "'-' (up to 128), not starting with '.' or '-', such as 1.0.0"
            )
    if not _PATH.match(repository):
        raise KitaruUsageError(
            f"--repository {repository!r} is not a valid repository path; use lowercase "
            "letters, digits and '.', '_', '-' or '/' between them, such as kitaru-server"
        )
    chosen = image_extras(target, extras)
    full = f"{target.registry}/{repository}"
    say = progress or (lambda _message: None)
    say(
        f"building the server image {full} with kitaru[{','.join(chosen)}] on stack {target.name!r}"
    )
    with tempfile.TemporaryDirectory(prefix="kitaru-server-image-") as tmp:
        project = Path(tmp)
        (project / "pyproject.toml").write_text(PYPROJECT)
        built = make_builder(target).build(
            BuildRequest(
                project_root=project,
                repository=full,
                extras=chosen,
                recipe="server",
                tags=extra_tags,
            ),
            say,
        )
    return ServerImage(
        stack=target.name,
        repository=full,
        digest=built.digest,
        ref=built.ref,
        tag=built.tag,
        tags=tuple(f"{full}:{tag}" for tag in extra_tags),
        extras=chosen,
        reused=built.reused,
    )


def _check_stack(stack: StackRecord) -> None:
    """Fail, saying what to do, unless the stack builds images and has a registry."""
    from kitaru.stacks._flavor import load_flavor
    from kitaru.stacks._registry_probe import probe_registry

    register = (
        "kitaru stack register NAME --orchestrator docker --artifact-store URI "
        "--registry HOST[:PORT]/PATH"
    )
    if stack.builder is None and load_flavor(stack.orchestrator).default_builder is None:
        raise KitaruUsageError(
            f"stack {stack.name!r} ({stack.orchestrator}) builds no images; build the server "
            f"image on a stack with a builder and a registry (`{register}`), then "
            "`kitaru server build-image --stack NAME`"
        )
    if not stack.registry:
        raise KitaruUsageError(
            f"stack {stack.name!r} has no container registry to push the server image to; "
            "register the stack again with one (`kitaru stack register "
            f"{stack.name} --registry HOST[:PORT]/PATH --replace ...`) or pick a stack that "
            "has one with --stack NAME"
        )
    probe_registry(
        stack.registry,
        what=f"the registry of stack {stack.name!r},",
        fix=f"start it, or point stack {stack.name!r} at one that runs",
    )
