"""Invoking a deployment: run the version a tag points at (or a given version) in its own
image, on its stack's orchestrator, without importing the code on this machine.

The arguments are checked against the signature recorded at deploy time and stored as
the execution's inputs; the execution records the version and the invocation id, and
its image, so that a resume or an answered wait runs the same snapshot again.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from kitaru._errors import InvalidInputError, KitaruUsageError, NotFoundError
from kitaru._ids import new_id
from kitaru.deployments._deploy import DEFAULT_TAG
from kitaru.deployments._routing import choose_version
from kitaru.journal import (
    ArtifactRecord,
    DeploymentRecord,
    ExecutionRecord,
    Journal,
    current_journal,
    open_journal,
)


def live_deployment(journal: Journal, flow: str, version: int) -> DeploymentRecord:
    found = journal.get_deployment(flow, version)
    if found is None or found.deleted_at is not None:
        versions = [d.version for d in journal.list_deployments(flow)]
        state = "was deleted" if found is not None else "does not exist"
        raise NotFoundError(
            f"version {version} of flow {flow!r} {state}; versions: "
            f"{', '.join(map(str, versions)) or 'none (deploy it with kitaru deploy)'}"
        )
    return found


def pick(
    journal: Journal, flow: str, tag: str | None, version: int | None, invocation_id: str
) -> tuple[DeploymentRecord, str | None]:
    """(the deployment to run, the tag that chose it)."""
    if tag is not None and version is not None:
        raise KitaruUsageError("give a tag or a version to invoke, not both")
    if version is not None:
        return live_deployment(journal, flow, version), None
    tag = tag or DEFAULT_TAG
    found = journal.get_tag(flow, tag)
    if found is None:
        tags = [t.tag for t in journal.list_tags(flow)]
        if not tags and not journal.list_deployments(flow):
            raise NotFoundError(
                f"flow {flow!r} has no deployments; deploy it first: "
                f"kitaru deploy path/to/module.py:{flow}"
            )
        raise NotFoundError(
            f"flow {flow!r} has no tag {tag!r}; tags: {', '.join(tags) or 'none'} (point one "
            f"at a version with: kitaru deployments tag {flow} VERSION {tag})"
        )
    return live_deployment(journal, flow, choose_version(found, invocation_id)), tag


def bind(
    deployment: DeploymentRecord, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The arguments by parameter name, checked against the deployed signature."""
    params = []
    for p in deployment.signature:
        kind = inspect._ParameterKind[p["kind"]]
        default = inspect.Parameter.empty if p["required"] else None
        if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            default = inspect.Parameter.empty
        params.append(inspect.Parameter(p["name"], kind, default=default))
    what = f"flow {deployment.flow!r} (version {deployment.version})"
    try:
        bound = inspect.Signature(params).bind(*args, **kwargs)
    except TypeError as exc:
        names = ", ".join(p["name"] for p in deployment.signature) or "no arguments"
        raise InvalidInputError(f"cannot invoke {what}: {exc}; it takes: {names}") from None
    inputs = dict(bound.arguments)
    by_name = {p["name"]: p for p in deployment.signature}
    for name, value in inputs.items():
        expected = by_name[name].get("json_type")
        if expected is not None and not _is(value, expected):
            raise InvalidInputError(
                f"cannot invoke {what}: argument {name!r} must be {_article(expected)} "
                f"({by_name[name]['annotation']}), not {json.dumps(value)}"
            )
    return inputs


def _is(value: Any, json_type: str) -> bool:
    if json_type == "boolean":
        return isinstance(value, bool)
    if json_type == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if json_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    kinds: dict[str, type] = {"string": str, "array": list, "object": dict}
    return isinstance(value, kinds[json_type])


def _article(json_type: str) -> str:
    return ("an " if json_type[0] in "aeiou" else "a ") + json_type


def input_artifacts(
    exec_id: str, store_uri: str, deployment: DeploymentRecord, inputs: dict[str, Any]
) -> list[ArtifactRecord]:
    """The inputs as JSON artifacts. A parameter with an annotation is stored as typed
    JSON, so the flow in the image reads it back as that type (a pydantic model, a
    dataclass) with its own annotation."""
    from kitaru import _serialize
    from kitaru._flow_inputs import input_artifact
    from kitaru.artifacts import open_store

    store = open_store(store_uri)
    annotations = {
        p["name"]: p.get("annotation")
        for p in deployment.signature
        if p["kind"] not in ("VAR_POSITIONAL", "VAR_KEYWORD")
    }
    out = []
    for name, value in inputs.items():
        encoded = _serialize.encode(value, what=f"argument {name!r}")
        if annotations.get(name) and encoded.serializer == "json":
            encoded = _serialize.Encoded(
                "typed-json", f"annotation:{annotations[name]}", encoded.data
            )
        out.append(input_artifact(exec_id, store, name, encoded))
    return out


def check_invocation_id(invocation_id: str) -> str:
    if not invocation_id or len(invocation_id) > 200 or not invocation_id.isprintable():
        raise KitaruUsageError(
            f"invocation id {invocation_id!r} is not usable; give 1-200 printable characters "
            "(a request id, a ticket number), or leave it out to get a new one"
        )
    return invocation_id


def invoke(
    flow: str,
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    tag: str | None = None,
    version: int | None = None,
    invocation_id: str | None = None,
    journal: Journal | None = None,
    hint: Any = None,
    server_url: str | None = None,
    refuse_local: bool = False,
    queue: str | None = None,
    priority: int = 0,
    idempotency_key: str | None = None,
) -> Any:
    """Start an execution of a deployed version; returns its handle.

    `idempotency_key`: a second invocation of the flow with the key returns the first
    one's execution and starts nothing (kitaru/_idempotency.py); it is also the
    invocation id when none is given, so the first try and its retries pick one version.

    `queue`: put it in that queue for a worker (`kitaru worker`) whose code is the
    version's snapshot, instead of handing it to the stack's orchestrator.

    `refuse_local`: a server invoking: refuse stacks that would run the flow here.
    `server_url`: the public URL of a server that starts the invocation itself (from its
    configuration), so that the container reports to the server rather than to its
    database."""
    from kitaru import _idempotency, _ready
    from kitaru.stacks import _resolve
    from kitaru.stacks._submit import StackExecutionHandle, _submit, make_orchestrator, reused

    journal = journal or current_journal()
    if queue is not None:
        _ready.check_name(queue)
        _ready.check_priority(priority)
    _idempotency.check_key(idempotency_key)
    invocation_id = check_invocation_id(invocation_id or idempotency_key or new_id("ki"))
    deployment, chosen_by = pick(journal, flow, tag, version, invocation_id)
    inputs = bind(deployment, args, kwargs or {})
    stack = _resolve.get_stack(journal, deployment.stack)
    target = open_journal(_resolve.journal_url_for(stack))

    def existing(record: ExecutionRecord) -> Any:
        handle = StackExecutionHandle(record.exec_id, hint=hint, journal=target)
        reused(handle, record)
        return handle

    # Before anything is checked against the stack: the execution the key started is the
    # answer as it stands (a stack refused now may have taken it then).
    found = _idempotency.earlier(target, flow, idempotency_key)
    if found is not None:
        return existing(found)
    if refuse_local and stack.orchestrator == "local" and queue is None:
        # The local orchestrator runs the flow on the submitting machine: for a server,
        # its own host, which runs no flow code.
        raise KitaruUsageError(
            f"version {deployment.version} of {flow!r} is deployed on stack {stack.name!r}, "
            "whose orchestrator runs flows on the machine that starts them; a server runs no "
            "flow code: invoke it with `kitaru deployments invoke` where its code lives"
        )
    orchestrator = make_orchestrator(stack) if queue is None else None
    root = deployment.project_root
    flow_file = os.path.join(root, deployment.flow_file) if deployment.flow_file else None
    now = time.time()
    record = ExecutionRecord(
        exec_id=new_id("kx"),
        flow=deployment.flow,
        status="queued",
        created_at=now,
        updated_at=now,
        flow_ref=deployment.flow_ref,
        flow_file=flow_file,
        import_path=os.path.normpath(os.path.join(root, deployment.import_path))
        if deployment.import_path
        else None,
        python=sys.executable,
        stack=stack.name,
        orchestrator=stack.orchestrator,
        artifact_store=stack.artifact_store,
        runs=0,
        argv=[flow_file] if flow_file else [],
        project_root=root,
        metadata={
            "image": deployment.image,
            "deployment": {"version": deployment.version, "tag": chosen_by},
        },
        deployment_version=deployment.version,
        invocation_id=invocation_id,
        idempotency_key=idempotency_key,
    )
    if queue is not None:
        record.queue, record.priority = queue, priority
        record.metadata.update(_ready.ready_note(queue, now))
    elif server_url is not None:
        from kitaru.stacks._submit import check_server_image

        check_server_image(record, stack, deployment.image)
    holder = _idempotency.store(
        target, record, input_artifacts(record.exec_id, stack.artifact_store, deployment, inputs)
    )
    if holder is not None:  # another invocation stored the key first (and submits it)
        return existing(holder)
    if queue is not None:
        return StackExecutionHandle(record.exec_id, hint=hint, journal=target)
    assert orchestrator is not None
    _submit(target, record, stack, orchestrator, server_url=server_url)
    return StackExecutionHandle(record.exec_id, hint=hint, journal=target)
