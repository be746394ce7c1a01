"""`flow.deploy()`: build (or reuse) the locked image of the flow's project through the
stack's builder, push it, and record an immutable, numbered deployment.

Everything that can fail is done before the journal is written: the registry answers,
the project locks, the image builds and pushes. Only then is the version recorded (and
the tag moved) in one transaction, so a failed deploy leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitaru._errors import ConfigurationError, KitaruUsageError
from kitaru._version import __version__
from kitaru.journal import DeploymentRecord, Journal, StackRecord, current_journal

TAG_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DEFAULT_TAG = "default"

Progress = Callable[[str], None]


def check_tag(tag: str) -> str:
    if not TAG_NAME.match(tag):
        raise KitaruUsageError(
            f"tag {tag!r} is not a valid tag name; use letters, digits, '.', '-' and '_' "
            "(up to 63), starting with a letter or digit, such as default or canary"
        )
    return tag


def who() -> str:
    """Who is deploying or moving a tag: user@host."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def tag_taken(flow: str, tag: str) -> str:
    return (
        f"tag {tag!r} of {flow!r} exists already, and moving it needs an admin token; "
        "deploy with --no-tag (or a new tag), then have an admin run "
        f"`kitaru deployments tag {flow} <version> {tag}`"
    )


def _check_tag_is_new_or_ours(journal: Journal, flow: str, tag: str) -> None:
    """Through a server, a token below admin creates tags at deploy time but moves none
    (the server refuses it); say so before the build rather than after."""
    from kitaru.journal._http import HttpJournal

    if not isinstance(journal, HttpJournal) or journal.scope() == "admin":
        return
    if journal.get_tag(flow, tag) is not None:
        raise KitaruUsageError(tag_taken(flow, tag))


def project_root(flow: Any) -> Path:
    """The nearest directory above the flow's file with a pyproject.toml."""
    if not flow.flow_file:
        raise KitaruUsageError(
            f"flow {flow.name!r} was defined interactively (a notebook or REPL); a deployment "
            "is built from a project on disk: move the flow into a module of a project"
        )
    start = Path(flow.flow_file).resolve().parent
    for directory in [start, *start.parents]:
        if (directory / "pyproject.toml").is_file():
            return directory
    has_requirements = (start / "requirements.txt").is_file()
    hint = (
        " (a requirements.txt alone is not locked; turn it into one with "
        "`uv init --bare && uv add -r requirements.txt`)"
        if has_requirements
        else ""
    )
    raise KitaruUsageError(
        f"flow {flow.name!r} ({flow.flow_file}) is not inside a project: a deployment is "
        "an image of the project around the flow, locked with uv; add a pyproject.toml "
        f"next to it (`uv init --bare` there, then `uv add` what the flow imports){hint}"
    )


def signature_of(fn: Callable[..., Any]) -> list[dict[str, Any]]:
    """The flow's parameters, so that an invocation's arguments are checked without
    importing the deployed code."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}
    out: list[dict[str, Any]] = []
    for param in inspect.signature(fn).parameters.values():
        variadic = param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        # `*notes: str` annotates each value, not the tuple the flow receives.
        hint = None if variadic else hints.get(param.name)
        out.append(
            {
                "name": param.name,
                "kind": param.kind.name,
                "required": param.default is param.empty and not variadic,
                "annotation": None if param.annotation is param.empty else _text(hint or param.annotation),
                "json_type": _JSON_TYPES.get(hint) if isinstance(hint, type) else None,
            }
        )  # fmt: skip
    return out


_JSON_TYPES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def _text(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__ if annotation.__module__ == "builtins" else (
            f"{annotation.__module__}.{annotation.__qualname__}"
        )  # fmt: skip
    return str(annotation).replace("typing.", "")


def manifest_of(project: Path, files: list[Path]) -> dict[str, str]:
    """Each file's path relative to the project and its SHA-256."""
    return {
        p.relative_to(project).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def source_hash(manifest: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for rel in sorted(manifest):
        digest.update(f"{rel}\0{manifest[rel]}\n".encode())
    return digest.hexdigest()


def _inside(path: str | None, project: Path, what: str, flow: Any) -> str | None:
    if path is None:
        return None
    resolved = Path(path).resolve()
    if resolved != project and project not in resolved.parents:
        raise KitaruUsageError(
            f"flow {flow.name!r}: its {what} {resolved} is outside its project {project}, "
            "so the image would not have it; move the flow into the project"
        )
    return os.path.relpath(resolved, project)


def check_registry(stack: StackRecord) -> None:
    if not stack.registry:
        return
    from kitaru.stacks._registry_probe import probe_registry

    probe_registry(
        stack.registry,
        what=f"the registry of stack {stack.name!r},",
        fix=f"start it, or point stack {stack.name!r} at one that runs "
        f"(kitaru stack register {stack.name} --registry HOST/PATH --replace ...)",
    )


def deploy(
    flow: Any,
    *,
    tag: str | None = DEFAULT_TAG,
    stack: str | None = None,
    journal: Journal | None = None,
    progress: Progress | None = None,
) -> DeploymentRecord:
    """Build or reuse the flow's image on its stack and record the next version."""
    from kitaru.stacks import _resolve
    from kitaru.stacks._components import _repository, make_builder, runtime_extras
    from kitaru.stacks._contracts import BuildRequest
    from kitaru.stacks._flavor import load_flavor

    say = progress or (lambda _message: None)
    journal = journal or current_journal()
    if tag is not None:
        check_tag(tag)
        _check_tag_is_new_or_ours(journal, flow.name, tag)
    target = _resolve.resolve(journal, stack or flow.stack)
    flavor = load_flavor(target.orchestrator)
    if flavor.default_builder is None:
        raise KitaruUsageError(
            f"stack {target.name!r} ({target.orchestrator}) runs flows from the code on this "
            "machine, so there is no image to deploy; deploy to a stack that builds one "
            "(docker, kubernetes, aws_batch, gcp_cloud_run, azure_container_apps) with "
            "--stack NAME"
        )
    project = project_root(flow)
    flow_file = _inside(flow.flow_file, project, "file", flow)
    import_path = _inside(flow.import_path, project, "import path", flow)
    check_registry(target)
    builder = make_builder(target)
    repository = _repository(target, project)
    say(f"building the image of {project} for stack {target.name!r} ({repository})")
    built = builder.build(
        BuildRequest(project_root=project, repository=repository, extras=runtime_extras(target)),
        say,
    )
    # After the build: locking may have written the project's uv.lock.
    manifest = manifest_of(project, builder.project_files(project))
    record = DeploymentRecord(
        flow=flow.name,
        version=0,
        image=built.ref,
        digest=built.digest,
        content_hash=built.content_hash,
        lock_hash=built.lock_hash,
        source_hash=source_hash(manifest),
        kitaru_version=__version__,
        signature=signature_of(flow.fn),
        flow_ref=flow.flow_ref,
        flow_file=flow_file,
        import_path=import_path,
        project_root=str(project),
        stack=target.name,
        orchestrator=target.orchestrator,
        builder=target.builder or flavor.default_builder,
        reused=built.reused,
        created_by=who(),
        created_at=time.time(),
        manifest=manifest,
        metadata={"repository": repository, "image_tag": built.tag},
    )
    return journal.create_deployment(record, tag=tag)


def local_changes(deployment: DeploymentRecord, journal: Journal) -> dict[str, Any]:
    """Whether the project on this machine still matches the deployed snapshot."""
    project = Path(deployment.project_root)
    out: dict[str, Any] = {"project_root": str(project), "differs": None}
    if not project.is_dir():
        out["reason"] = f"{project} does not exist on this machine"
        return out
    try:
        now = project_manifest(deployment, journal, project)
    except (ConfigurationError, KitaruUsageError) as exc:
        out["reason"] = str(exc)
        return out
    then = deployment.manifest
    changed = sorted(k for k in now.keys() & then.keys() if now[k] != then[k])
    added = sorted(now.keys() - then.keys())
    removed = sorted(then.keys() - now.keys())
    out.update(
        differs=bool(changed or added or removed),
        source_hash=source_hash(now),
        changed=changed,
        added=added,
        removed=removed,
    )
    return out


def project_manifest(
    deployment: DeploymentRecord, journal: Journal, project: Path
) -> dict[str, str]:
    """The files of `project` as the deployment's builder lists them, with their hashes:
    what its snapshot held, if nothing changed (`source_hash` of it is the version's)."""
    return manifest_of(project, _builder_for(deployment, journal).project_files(project))


def _builder_for(deployment: DeploymentRecord, journal: Journal) -> Any:
    """The deployment's builder, to list project files the way it did (the stack may be
    gone; listing files needs none of its settings)."""
    from kitaru.stacks import _plugins

    stack = journal.get_stack(deployment.stack) or StackRecord(
        deployment.stack, deployment.orchestrator, ""
    )
    cls = _plugins.load("kitaru.builders", deployment.builder)
    return cls(stack, None)
