"""The locked requirements of an image: the user's project (its uv lock) plus what kitaru
needs in the container, compiled into one hashed requirements file.

kitaru itself comes from wheels of the running kitaru: built from its source when it runs
from a checkout (the workspace), otherwise pinned to the installed version.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from packaging.requirements import Requirement

from kitaru import KitaruError

KITARU_DISTRIBUTIONS = (
    "kitaru",
    "kitaru-orchestrators",
    "kitaru-builders",
    "kitaru-stacks",
    "kitaru-infra",
)
# Directories never copied into an image nor hashed.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "node_modules",
        ".kitaru",
        ".test-services",
        "dist",
        "build",
        ".demo-home",
    }
)


class BuildError(KitaruError):
    """The image could not be built or pushed; the message carries the failing output."""


def uv_bin() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _run(args: list[str], *, cwd: Path, what: str, stdin: str | None = None) -> str:
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        args, cwd=cwd, input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        out = (result.stderr or result.stdout).strip()
        raise BuildError(f"{what} failed:\n{out}")
    return result.stdout


def workspace_root() -> Path | None:
    """The kitaru source checkout this kitaru runs from, if it does."""
    import kitaru

    root = Path(kitaru.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and "[tool.uv.workspace]" in pyproject.read_text():
        return root
    return None


def project_pins(project: Path) -> list[str]:
    """The project's locked third-party requirements (`uv lock`, then `uv export`)."""
    uv = uv_bin()
    _run([uv, "lock", "--quiet"], cwd=project, what=f"locking the project {project} (uv lock)")
    args = [
        uv,
        "export",
        "--frozen",
        "--format",
        "requirements-txt",
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--no-emit-project",
        "--no-dev",
        "--quiet",
    ]
    for name in KITARU_DISTRIBUTIONS:
        args += ["--no-emit-package", name]
    out = _run(args, cwd=project, what=f"exporting the lock of {project} (uv export)")
    return [
        line.strip()
        for line in out.splitlines()
        if line.strip() and not line.startswith(("#", "-e", "."))
    ]


# What a container needs of each extra: the client of the journal or the artifact store,
# the web stack of the server image, the tracing SDK and its exporter. The cloud extras
# also bring orchestrator SDKs and Pulumi, which only the submitting side uses.
RUNTIME_PACKAGES: dict[str, tuple[str, ...]] = {
    "server": (
        "fastapi",
        "uvicorn",
        "httptools",
        "uvloop",
        "jinja2",
        "jsonschema",
        "prometheus-client",
    ),
    "postgres": ("psycopg",),
    "aws": ("boto3",),
    "gcp": ("google-cloud-storage",),
    "azure": ("azure-storage-blob", "azure-identity"),
    "otel": ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http"),
}


def kitaru_requirements(extras: tuple[str, ...]) -> list[str]:
    """kitaru's own requirements in a container: its base dependencies plus the journal and
    store clients of `extras`, with the version ranges kitaru declares."""
    wanted = {name for extra in extras for name in RUNTIME_PACKAGES.get(extra, ())}
    out = []
    for raw in importlib.metadata.requires("kitaru") or []:
        req = Requirement(raw)
        name = req.name.lower()
        if name.startswith("kitaru"):
            continue
        marker = req.marker
        if marker is None or (
            name in wanted and any(marker.evaluate({"extra": e}) for e in extras)
        ):
            req.marker = None
            out.append(str(req))
    return out


def workspace_pins(root: Path) -> str:
    """Versions the workspace is tested with, as constraints."""
    return _run(
        [
            uv_bin(),
            "export",
            "--frozen",
            "--all-packages",
            "--all-extras",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            "--no-emit-workspace",
            "--quiet",
        ],
        cwd=root,
        what="exporting kitaru's own lock",
    )


def compile_requirements(
    requirements: list[str], *, python_version: str, constraints: str | None, workdir: Path
) -> str:
    """One hashed, fully pinned requirements file for the image's platform."""
    machine = platform.machine().lower()
    arch = "aarch64" if machine in ("arm64", "aarch64") else "x86_64"
    args = [
        uv_bin(),
        "pip",
        "compile",
        "-",
        "--generate-hashes",
        "--no-header",
        "--no-annotate",
        "--quiet",
        "--python-version",
        python_version,
        "--python-platform",
        f"{arch}-unknown-linux-gnu",
    ]
    if constraints:
        path = workdir / "constraints.txt"
        path.write_text(constraints)
        args += ["--constraints", str(path)]
    return _run(
        args,
        cwd=workdir,
        stdin="\n".join(requirements) + "\n",
        what="resolving the image's requirements (uv pip compile)",
    )


def build_wheels(root: Path, out: Path) -> list[Path]:
    _run(
        [uv_bin(), "build", "--all-packages", "--wheel", "--quiet", "-o", str(out)],
        cwd=root,
        what="building kitaru's wheels (uv build)",
    )
    return sorted(out.glob("*.whl"))


def project_files(root: Path) -> list[Path]:
    """The project's files that go into the image, in a stable order."""
    ignore = _dockerignore(root)
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(
            d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name.endswith((".pyc", ".pyo")) or _ignored(rel, ignore) or not path.is_file():
                continue
            files.append(path)
    return files


def _dockerignore(root: Path) -> list[str]:
    path = root / ".dockerignore"
    if not path.is_file():
        return []
    return [
        line.strip().rstrip("/")
        for line in path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def _ignored(rel: str, patterns: list[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(rel, p) or rel.startswith(p + "/") for p in patterns)


def tree_hash(root: Path, files: list[Path], digest: hashlib._Hash) -> None:
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())


def source_hash(root: Path, packages: list[str]) -> str:
    """A hash of kitaru's own source, so a changed kitaru makes a new image."""
    digest = hashlib.sha256()
    for package in packages:
        base = root / package
        if base.is_dir():
            tree_hash(root, project_files(base), digest)
    return digest.hexdigest()
