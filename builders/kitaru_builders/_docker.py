"""`docker` builder: the image an orchestrator runs, built on a Docker engine.

The image holds: the base image (python:<version>-slim by default), optional extra CA
certificates, one virtualenv with the project's locked requirements and kitaru's
(installed with --require-hashes), kitaru's wheels, the project's source at /app, and
what the image runs (its recipe: a flow's runs, or the Kitaru server). It is tagged
with a hash of all of that, the Dockerfile included: the same inputs give the same tag,
and a tag the registry (or, without one, the engine) already has is reused as it is.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitaru import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import BuildRequest, BuiltImage
from kitaru_builders import _lock
from kitaru_builders._lock import BuildError
from kitaru_builders._recipes import recipe_lines
from kitaru_builders._registry import DockerRegistry, registry_for

# The layout of the build context; the Dockerfile's text is hashed as well.
RECIPE_VERSION = "3"
PROJECT_DIR = "/app"
VENV = "/opt/kitaru/venv"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def dockerfile(base_image: str, with_certs: bool, recipe: str = "flow") -> str:
    certs = (
        "cp /opt/kitaru-build/certs/*.crt /usr/local/share/ca-certificates/ && "
        "update-ca-certificates >/dev/null && "
        if with_certs
        else ""
    )
    # Few layers on purpose: each layer is a full copy on some storage drivers (vfs). The
    # settings come first and the project last, so a new version of the project's code
    # (a redeploy) reuses every cached layer but the last ones.
    return f"""FROM {base_image}
ENV PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    KITARU_PROJECT_ROOT={PROJECT_DIR} PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \\
    SSL_CERT_FILE={CA_BUNDLE} REQUESTS_CA_BUNDLE={CA_BUNDLE}
WORKDIR {PROJECT_DIR}
COPY kitaru-build/ /opt/kitaru-build/
RUN set -e; {certs}python3 -m venv {VENV} && \\
    PIP_CERT={CA_BUNDLE} {VENV}/bin/pip install --no-cache-dir --disable-pip-version-check \\
      --no-deps --require-hashes -r /opt/kitaru-build/requirements.txt && \\
    {VENV}/bin/pip install --no-cache-dir --disable-pip-version-check --no-deps \\
      /opt/kitaru-build/wheels/*.whl && \\
    rm -rf /opt/kitaru-build
COPY project/ {PROJECT_DIR}/
{recipe_lines(recipe)}"""


class DockerBuilder:
    flavor = "docker"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from kitaru_builders._engine import engine

            self._client = engine(getattr(self.settings, "docker_host", None))
        return self._client

    @property
    def base_image(self) -> str:
        return str(self.settings.base_image or f"python:{self.settings.python_version}-slim")

    def build(
        self, request: BuildRequest, progress: Callable[[str], None] | None = None
    ) -> BuiltImage:
        say = progress or (lambda _message: None)
        project = request.project_root
        if not (project / "pyproject.toml").is_file():
            raise BuildError(
                f"{project} has no pyproject.toml; the image is built from a uv project "
                "(run `uv init` there and list the packages the flow imports)"
            )
        certs = [Path(c).expanduser() for c in self.settings.ca_certificates]
        for cert in certs:
            if not cert.is_file():
                raise ConfigurationError(
                    f"setting 'ca_certificates': {cert} does not exist; give PEM files, "
                    "e.g. --set ca_certificates='[\"/usr/local/share/ca-certificates/proxy.crt\"]'"
                )
        text = dockerfile(self.base_image, bool(certs), request.recipe)
        # Reach the engine before the slow resolving: a missing engine is told at once.
        client = self.client
        with tempfile.TemporaryDirectory(prefix="kitaru-build-") as tmp:
            work = Path(tmp)
            root = _lock.workspace_root()
            say("locking and resolving the image's requirements (uv)")
            wanted = _lock.project_pins(project) + _lock.kitaru_requirements(request.extras)
            if root is None:
                from kitaru import __version__

                wanted.append(f"kitaru=={__version__}")
            requirements = _lock.compile_requirements(
                wanted,
                python_version=self.settings.python_version,
                constraints=_lock.workspace_pins(root) if root else None,
                workdir=work,
            )
            files = _lock.project_files(project)
            content_hash = self._hash(text, requirements, root, project, files, certs)
            tag = f"{request.repository}:{content_hash[:24]}"
            registry = registry_for(self.stack.registry, client) if self.stack.registry else None
            lock_hash = hashlib.sha256(requirements.encode()).hexdigest()
            existing = registry.digest(tag) if registry else self._local_digest(tag)
            if existing is not None:
                say(f"{tag} is already there (same inputs): reusing it, nothing to build")
                self._add_tags(request, tag, existing, registry, say)
                ref = f"{request.repository}@{existing}" if registry else tag
                return BuiltImage(ref, existing, tag, content_hash, True, lock_hash)
            wheels = work / "wheels"
            wheels.mkdir()
            if root is not None:
                say(f"building kitaru's wheels from {root}")
                _lock.build_wheels(root, wheels)
            context = self._context(text, requirements, wheels, project, files, certs)
            say(f"building {tag}")
            self._build(context, tag, say)
            if registry is None:
                digest = str(client.images.get(tag).id)
                self._add_tags(request, tag, digest, None, say)
                return BuiltImage(tag, digest, tag, content_hash, False, lock_hash)
            say(f"pushing {tag}")
            digest = self._push(tag, registry.credentials())
            self._add_tags(request, tag, digest, registry, say)
            return BuiltImage(
                f"{request.repository}@{digest}", digest, tag, content_hash, False, lock_hash
            )

    def _add_tags(
        self,
        request: BuildRequest,
        tag: str,
        digest: str,
        registry: DockerRegistry | None,
        say: Callable[[str], None],
    ) -> None:
        """Give the image its extra names, and push them; an image reused from the
        registry and not on this engine is pulled first."""
        if not request.tags:
            return
        import docker.errors

        credentials = registry.credentials() if registry else None
        try:
            image = self.client.images.get(tag)
        except docker.errors.ImageNotFound:
            say(f"pulling {request.repository}@{digest} to tag it")
            image = self.client.images.pull(request.repository, tag=digest, auth_config=credentials)
        for extra in request.tags:
            image.tag(request.repository, extra)
            if registry is not None:
                say(f"pushing {request.repository}:{extra}")
                self._push(f"{request.repository}:{extra}", credentials)

    def project_files(self, project_root: Path) -> list[Path]:
        return _lock.project_files(project_root)

    def _hash(
        self,
        dockerfile_text: str,
        requirements: str,
        root: Path | None,
        project: Path,
        files: list[Path],
        certs: list[Path],
    ) -> str:
        digest = hashlib.sha256()
        digest.update(f"recipe {RECIPE_VERSION}\n".encode())
        digest.update(dockerfile_text.encode())
        digest.update(requirements.encode())
        if root is not None:
            digest.update(
                _lock.source_hash(
                    root, ["kitaru", "orchestrators", "builders", "stacks", "infra"]
                ).encode()
            )
            digest.update((root / "pyproject.toml").read_bytes())
        _lock.tree_hash(project, files, digest)
        for cert in certs:
            digest.update(cert.read_bytes())
        return digest.hexdigest()

    def _local_digest(self, tag: str) -> str | None:
        import docker.errors

        try:
            return str(self.client.images.get(tag).id)
        except docker.errors.ImageNotFound:
            return None

    def _context(
        self,
        dockerfile_text: str,
        requirements: str,
        wheels: Path,
        project: Path,
        files: list[Path],
        certs: list[Path],
    ) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", dockerfile_text.encode())
            _add_bytes(tar, "kitaru-build/requirements.txt", requirements.encode())
            for wheel in sorted(wheels.glob("*.whl")):
                tar.add(wheel, f"kitaru-build/wheels/{wheel.name}")
            if not any(wheels.glob("*.whl")):
                _add_bytes(tar, "kitaru-build/wheels/.keep", b"")
            for i, cert in enumerate(certs):
                _add_bytes(tar, f"kitaru-build/certs/extra-{i}.crt", cert.read_bytes())
            for path in files:
                tar.add(path, f"project/{path.relative_to(project).as_posix()}", recursive=False)
        buf.seek(0)
        return buf

    def _build(self, context: io.BytesIO, tag: str, say: Callable[[str], None]) -> None:
        step: list[str] = []
        for chunk in self.client.api.build(
            fileobj=context,
            custom_context=True,
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            network_mode="host",
            decode=True,
        ):
            text = chunk.get("stream")
            if text:
                if text.startswith("Step "):
                    step = [text.rstrip()]
                    say("  " + _shorten(text.strip()))
                else:
                    step.append(text.rstrip())
            if "error" in chunk:
                output = "\n".join(line for line in step[-40:] if line)
                raise BuildError(
                    f"building the image {tag} failed: {chunk['error'].strip()}\n"
                    f"output of the failing step:\n{output}"
                )

    def _push(self, tag: str, credentials: dict[str, str] | None) -> str:
        repository, _, version = tag.rpartition(":")
        digest: str | None = None
        for attempt in range(3):
            for chunk in self.client.images.push(
                repository, version, stream=True, decode=True, auth_config=credentials
            ):
                if "error" in chunk:
                    if attempt == 2:
                        raise BuildError(
                            f"pushing {tag} failed: {chunk['error']}; check that the registry "
                            "is reachable and that this machine is logged in to it"
                        )
                    break
                aux = chunk.get("aux") or {}
                if aux.get("Digest"):
                    digest = str(aux["Digest"])
            if digest:
                return digest
            time.sleep(1 + attempt)
        raise BuildError(f"pushing {tag} returned no digest")


def _shorten(line: str, width: int = 100) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))
