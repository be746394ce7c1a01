"""Starting and re-submitting executions on stacks whose orchestrator runs them
elsewhere (a subprocess, a container, a cloud job); the orchestrator's view of them
(logs, runs that ended, cancelling) is in `_reconcile.py`, its parts in `_components.py`.

An execution on such a stack is created `queued`, with no lease. The orchestrator
starts `python -m kitaru run-execution ID`, which takes the lease and drives the flow
like a resume would. A wait answered later, or a crash followed by `resume`, moves the
execution back to `queued` (atomically, so two resumers cannot both submit) and submits
it again with the same image.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

from kitaru import _config, _execute, _flow_inputs, _idempotency, _project, _speak, _tracing, _trust
from kitaru._errors import ConfigurationError, KitaruError, KitaruUsageError, LeaseError
from kitaru._handle import ExecutionHandle
from kitaru._ids import new_id
from kitaru.journal import ExecutionRecord, Journal, StackRecord, current_journal, open_journal
from kitaru.stacks import _resolve as _stacks
from kitaru.stacks import _runs
from kitaru.stacks._components import (
    _repository,
    find_project_root,
    make_builder,
    make_orchestrator,
    run_directory,
    runtime_extras,
)
from kitaru.stacks._reconcile import (
    StackExecutionHandle,
    _fail_queued,
    orchestrator_logs,
    reconcile,
    reconcile_if_stale,
    stop_run,
)
from kitaru.stacks._resolve import runs_in_process

if TYPE_CHECKING:
    from kitaru.stacks._contracts import Orchestrator

# What callers import from here; the orchestrator's view of a run moved to _reconcile.py.
__all__ = [
    "IMAGE_PROJECT_ROOT",
    "StackExecutionHandle",
    "check_server_image",
    "make_builder",
    "make_orchestrator",
    "orchestrator_logs",
    "reconcile",
    "reconcile_if_stale",
    "resubmit",
    "reused",
    "run_flow",
    "runtime_extras",
    "stop_run",
    "submit_new",
    "was_submitted",
]

log = logging.getLogger("kitaru.stacks")

# Where the builder puts the project inside the image.
IMAGE_PROJECT_ROOT = "/app"


def run_flow(
    flow: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    idempotency_key: str | None = None,
) -> ExecutionHandle[Any]:
    """`Flow.run`: start an execution on the flow's stack (or the active one)."""
    _speak.mode()  # a bad KITARU_QUIET is refused before anything is recorded
    _idempotency.check_key(idempotency_key)
    journal = current_journal()
    stack = _stacks.resolve(journal, flow.stack)
    if not runs_in_process(stack):
        return submit_new(flow, args, kwargs, stack, idempotency_key=idempotency_key)
    target = journal if stack.journal is None else open_journal(_stacks.journal_url_for(stack))
    record, ran = _execute.start_local(
        flow,
        args,
        kwargs,
        stack=stack.name,
        store_uri=stack.artifact_store,
        journal=target,
        idempotency_key=idempotency_key,
    )
    cls = ExecutionHandle if ran or record.orchestrator == "local" else StackExecutionHandle
    handle: ExecutionHandle[Any] = cls(
        record.exec_id,
        hint=flow.return_hint(),
        journal=target,
        allow_pickle=flow.allow_pickle,
    )
    if ran:
        # It ended here: say how now (waiting, failed, cancelled), once.
        handle.tell(record.status, record)
    else:
        reused(handle, record)
    return handle


def reused(handle: ExecutionHandle[Any], record: ExecutionRecord) -> None:
    """A start whose idempotency key found `record`: the handle says so, and stderr."""
    from kitaru._lease import effective_status

    handle.reused = True
    _idempotency.said(record, effective_status(record.status, record.owner, record.lease_until))


def submit_new(
    flow: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    stack: StackRecord,
    *,
    idempotency_key: str | None = None,
) -> ExecutionHandle[Any]:
    from kitaru.artifacts import open_store
    from kitaru.stacks._contracts import BuildRequest
    from kitaru.stacks._flavor import load_flavor

    journal = open_journal(_stacks.journal_url_for(stack))
    # Before building an image: a start its key already made builds and submits nothing.
    found = _idempotency.earlier(journal, flow.name, idempotency_key)
    if found is not None:
        return _reused_handle(flow, journal, found)
    flavor = load_flavor(stack.orchestrator)
    open_store(stack.artifact_store)  # an unusable store fails before anything is recorded
    inputs = _flow_inputs.bind_inputs(flow.fn, args, kwargs)
    orchestrator = make_orchestrator(stack)
    # Only an image needs a project to build from; a background process runs the flow's
    # file where it is.
    project = find_project_root(flow) if flavor.default_builder else run_directory(flow)
    image: str | None = None
    if flavor.default_builder is not None:
        repository = _repository(stack, project)
        built = make_builder(stack).build(
            BuildRequest(project_root=project, repository=repository, extras=runtime_extras(stack))
        )
        image = built.ref
    now = time.time()
    record = _execute.new_record(
        flow,
        stack=stack.name,
        artifact_store=stack.artifact_store,
        now=now,
        owner=None,
        idempotency_key=idempotency_key,
    )
    record.status = "queued"
    record.orchestrator = stack.orchestrator
    record.project_root = str(project)
    if image is not None:
        record.metadata = {"image": image}
    holder = _idempotency.store(
        journal,
        record,
        _flow_inputs.input_artifacts(
            record.exec_id, stack.artifact_store, flow.fn, inputs, allow_pickle=flow.allow_pickle
        ),
    )
    if holder is not None:  # another start stored the key first and submits it
        return _reused_handle(flow, journal, holder)
    _submit(journal, record, stack, orchestrator)
    return StackExecutionHandle(
        record.exec_id, hint=flow.return_hint(), journal=journal, allow_pickle=flow.allow_pickle
    )


def _reused_handle(flow: Any, journal: Journal, record: ExecutionRecord) -> ExecutionHandle[Any]:
    handle = StackExecutionHandle(
        record.exec_id, hint=flow.return_hint(), journal=journal, allow_pickle=flow.allow_pickle
    )
    reused(handle, record)
    return handle


def _submit(
    journal: Journal,
    record: ExecutionRecord,
    stack: StackRecord,
    orchestrator: Orchestrator,
    *,
    server_url: str | None = None,
) -> str:
    """Hand a queued execution to the stack's orchestrator; `server_url` is the public
    URL of the server that submits it (only a server passes one)."""
    from kitaru.stacks._contracts import SubmitRequest
    from kitaru.stacks._flavor import settings_of
    from kitaru.stacks._reporting import reporting
    from kitaru.stacks._secrets import SecretRef

    settings = settings_of(stack)
    environment = dict(getattr(settings, "environment", {}) or {})
    secrets = {
        name: SecretRef.parse(ref, what=f"secret_environment.{name}")
        for name, ref in (getattr(settings, "secret_environment", {}) or {}).items()
    }
    environment["KITARU_ARTIFACT_STORE"] = stack.artifact_store
    route = reporting(journal, record, stack, secrets, server_url)
    environment.update(route.environment)
    secrets.update(route.secrets)
    handed = _tracing.submit_traceparent(journal, record, stack.orchestrator)
    if handed is not None:
        environment["TRACEPARENT"] = handed  # the run's span continues this trace
    image = record.metadata.get("image")
    in_image = image is not None
    if in_image:
        # A distinct lease-owner host per run: containers may share the machine's
        # hostname (host networking), and their pids mean nothing here.
        environment["KITARU_HOST"] = f"{stack.orchestrator}-{record.exec_id}-{new_id('r')[-6:]}"
        environment.setdefault("KITARU_HOME", "/tmp/kitaru")
        environment["KITARU_PROJECT_ROOT"] = IMAGE_PROJECT_ROOT
        command: tuple[str, ...] = ("python", "-m", "kitaru", "run-execution", record.exec_id)
    else:
        environment.setdefault("KITARU_HOME", str(_config.home()))
        command = (sys.executable, "-m", "kitaru", "run-execution", record.exec_id)
    request = SubmitRequest(
        exec_id=record.exec_id,
        flow=record.flow,
        stack=stack.name,
        image=image,
        command=command,
        environment=environment,
        secrets=secrets,
        working_dir=IMAGE_PROJECT_ROOT if in_image else record.project_root,
    )
    try:
        run_id = orchestrator.submit(request)
    except BaseException as exc:
        _fail_queued(
            journal,
            record.exec_id,
            f"submitting to the {stack.orchestrator} orchestrator failed: {exc}",
        )
        if isinstance(exc, KitaruError):
            raise
        raise ConfigurationError(
            f"stack {stack.name!r}: the {stack.orchestrator} orchestrator could not start "
            f"execution {record.exec_id}: {exc}"
        ) from exc
    journal.set_run_id(record.exec_id, run_id, stack.orchestrator)
    try:
        _runs.seal(journal, record.exec_id, orchestrator.flavor, run_id)
    except KitaruError as exc:
        # The run is started; unsealed, only its own heartbeat stops it if cancelled.
        log.warning("could not record that %s was submitted from here: %s", run_id, exc)
    return run_id


def check_server_image(record: ExecutionRecord, stack: StackRecord, image: object) -> None:
    """A record from a server starts only images from the stack's own registry (where
    its builder pushes): on the server, or on a client that resumes through it. The
    image is named by a record anyone with a write token writes, and the container gets
    the stack's secrets, `env:` references resolved where it is submitted."""
    registry = (stack.registry or "").rstrip("/")
    if not registry or not isinstance(image, str) or not image.startswith(registry + "/"):
        raise KitaruUsageError(
            f"execution {record.exec_id} names the image {image!r}, which is not in the "
            f"registry of stack {stack.name!r} ({registry or 'none'}); an execution read "
            "from a server runs only in images its stack's builder pushed. Resume it from "
            "where it was built, with the journal itself: "
            f"`kitaru executions resume {record.exec_id}`"
        )


def was_submitted(record: ExecutionRecord) -> bool:
    """Whether an orchestrator (not the starting process) runs this execution."""
    return record.run_id is not None


def resubmit(
    journal: Journal, record: ExecutionRecord, *, server_url: str | None = None
) -> ExecutionRecord:
    """Queue a waiting, crashed, failed or lost execution again on its stack."""
    stack = _stacks.get_stack(journal, record.stack)
    image = record.metadata.get("image")
    if server_url is not None or _trust.serving():
        check_server_image(record, stack, image)
    elif not _trust.trusts_records(journal):
        # A record from a server names the image (the container gets the stack's
        # secrets), or the directory a run here starts in.
        if image is not None:
            check_server_image(record, stack, image)
        else:
            _project.check_run_directory(journal, record)
    orchestrator = make_orchestrator(stack)
    if not journal.transition(
        record.exec_id,
        to="queued",
        from_statuses=(record.status,),
        expected_owner=record.owner,
        now=time.time(),
    ):
        raise LeaseError(
            f"execution {record.exec_id} changed while it was being resumed (another process "
            f"resumed or cancelled it); see `kitaru executions get {record.exec_id}`"
        )
    _submit(journal, record, stack, orchestrator, server_url=server_url)
    final = journal.get_execution(record.exec_id)
    assert final is not None
    return final
