"""Starting, re-submitting and cancelling executions on stacks whose orchestrator runs
them elsewhere (a subprocess, a container, a cloud job).

An execution on such a stack is created `queued`, with no lease. The orchestrator
starts `python -m kitaru run-execution ID`, which takes the lease and drives the flow
like a resume would. A wait answered later, or a crash followed by `resume`, moves the
execution back to `queued` (atomically, so two resumers cannot both submit) and submits
it again with the same image.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kitaru import _config, _execute, _idempotency, _project, _speak, _tracing, _trust
from kitaru._errors import ConfigurationError, KitaruError, KitaruUsageError, LeaseError
from kitaru._flow import ExecutionHandle
from kitaru._ids import new_id
from kitaru.journal import ExecutionRecord, Journal, StackRecord, current_journal, open_journal
from kitaru.stacks import _resolve as _stacks
from kitaru.stacks import _runs
from kitaru.stacks._resolve import runs_in_process

if TYPE_CHECKING:
    from kitaru.stacks._contracts import Builder, Orchestrator, RunStatus

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


def make_orchestrator(stack: StackRecord) -> Orchestrator:
    from kitaru.stacks import _plugins
    from kitaru.stacks._flavor import settings_of

    cls = _plugins.load("kitaru.orchestrators", stack.orchestrator)
    orchestrator: Orchestrator = cls(stack, settings_of(stack))
    return orchestrator


def make_builder(stack: StackRecord) -> Builder:
    from kitaru.stacks import _plugins
    from kitaru.stacks._flavor import settings_of

    cls = _plugins.load("kitaru.builders", stack.builder or "docker")
    builder: Builder = cls(stack, settings_of(stack))
    return builder


def find_project_root(flow: Any) -> Path:
    """The nearest directory above the flow's file with a pyproject.toml."""
    start = Path(flow.flow_file or flow.import_path or os.getcwd()).resolve()
    for directory in [start, *start.parents]:
        if (directory / "pyproject.toml").is_file():
            return directory
    raise KitaruError(
        f"flow {flow.name!r} ({flow.flow_file}) is not inside a project: stacks that run "
        "executions elsewhere build them from the project around the flow; add a "
        "pyproject.toml next to it (`uv init`) listing what it imports"
    )


def run_directory(flow: Any) -> Path:
    """Where a background process on this machine runs a flow: its project when it has
    one, else the directory it was started from (as `python script.py` there would)."""
    try:
        return find_project_root(flow)
    except KitaruError:
        return Path(os.getcwd())


def runtime_extras(stack: StackRecord) -> tuple[str, ...]:
    """The kitaru extras a container needs to open the stack's journal and store."""
    from kitaru.artifacts import _STORES
    from kitaru.stacks._secrets import is_reference

    extras: list[str] = []
    journal = stack.journal or _config.journal_url()
    if is_reference(journal) or journal.startswith(("postgresql:", "postgres:")):
        extras.append("postgres")
    store_extra = _STORES.get(stack.artifact_store.partition("://")[0], ("", "", None))[2]
    if store_extra:
        extras.append(store_extra)
    environment = stack.settings.get("environment") or {}
    if isinstance(environment, dict) and _tracing.ENDPOINT_VARIABLES & set(environment):
        extras.append("otel")  # the stack sends its runs' spans to a collector
    return tuple(extras)


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
    inputs = _execute.bind_inputs(flow.fn, args, kwargs)
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
        _execute.input_artifacts(
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


def _repository(stack: StackRecord, project: Path) -> str:
    name = str(stack.settings.get("repository") or _slug(project.name))
    return f"{stack.registry}/{name}" if stack.registry else f"kitaru/{name}"


def _slug(text: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return out or "project"


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


def _fail_queued(journal: Journal, exec_id: str, error: str) -> None:
    """Fail an execution no run has taken yet (a no-op once one has)."""
    journal.transition(
        exec_id,
        to="failed",
        from_statuses=("queued",),
        expected_owner=None,
        now=time.time(),
        error=error,
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


def stop_run(journal: Journal, record: ExecutionRecord) -> None:
    """Cancel the execution's current run on its orchestrator (best effort; only a run
    this process may act on, kitaru/stacks/_runs.py)."""
    if record.run_id is None:
        return
    try:
        stack = _stacks.get_stack(journal, record.stack)
        orchestrator = make_orchestrator(stack)
        if _runs.may_act(journal, record, orchestrator):
            orchestrator.cancel(record.run_id)
    except KitaruError:
        pass


def orchestrator_logs(journal: Journal, record: ExecutionRecord) -> str:
    if record.run_id is None:
        return ""
    stack = _stacks.get_stack(journal, record.stack)
    orchestrator = make_orchestrator(stack)
    if not _runs.may_act(journal, record, orchestrator):
        raise KitaruUsageError(
            f"run {record.run_id!r} of execution {record.exec_id} was not submitted from "
            f"here, so its logs are not read from here (a record names it, and records "
            f"through a server are anyone's to write); read them where it was submitted, "
            f"or on the {stack.orchestrator} platform itself"
        )
    return orchestrator.logs(record.run_id)


# How long an execution may stay queued before a reader asks its orchestrator whether
# the run behind it is still alive: asking is a platform API call, and a healthy
# container takes the lease within seconds of starting.
QUEUED_CHECK_AFTER = 5.0


def reconcile_if_stale(
    journal: Journal,
    record: ExecutionRecord,
    *,
    after: float = QUEUED_CHECK_AFTER,
    now: float | None = None,
) -> ExecutionRecord:
    """`reconcile` for an execution queued longer than `after` seconds; a restart for a
    running one whose run died (kitaru/stacks/_restarts.py); else `record`."""
    if record.status == "running":
        from kitaru.stacks._restarts import restart_if_lost

        return restart_if_lost(journal, record, now=now)
    if record.status != "queued" or record.run_id is None:
        return record
    if (time.time() if now is None else now) - record.updated_at <= after:
        return record
    return reconcile(journal, record)


def reconcile(
    journal: Journal, record: ExecutionRecord, *, server_url: str | None = None
) -> ExecutionRecord:
    """A queued execution whose run ended without taking it is failed, with the reason
    (the end of the run's log). Only by a process that may act on the run
    (kitaru/stacks/_runs.py): the one that submitted it, or any with the journal open.

    Best effort, for readers: a stack or platform that cannot answer leaves the
    execution as it is rather than failing the read that asked."""
    if record.status != "queued" or record.run_id is None:
        return record
    try:
        stack = _stacks.get_stack(journal, record.stack)
        orchestrator = make_orchestrator(stack)
        if not _runs.may_act(journal, record, orchestrator):
            return record  # a run this process did not start: not its to judge
        status = orchestrator.status(record.run_id)
        if status.state not in ("succeeded", "failed", "cancelled", "missing"):
            return record
        current = journal.get_execution(record.exec_id)
        if current is None or current.status != "queued" or current.run_id != record.run_id:
            return current or record
        from kitaru.stacks import _restarts

        if _restarts.may_restart(stack, current, status, time.time()):
            return _restarts.restart(journal, current, status, server_url=server_url)
        tail = ""
        if status.state != "missing":
            tail = "\n".join(orchestrator.logs(record.run_id).strip().splitlines()[-5:])
        _fail_queued(journal, record.exec_id, ended_error(record, status, tail))
    except KitaruError:
        return record
    except Exception as exc:  # a platform SDK raises its own error types
        log.debug("could not ask the orchestrator about %s: %s", record.exec_id, exc)
        return record
    return journal.get_execution(record.exec_id) or record


def ended_error(record: ExecutionRecord, status: RunStatus, tail: str = "") -> str:
    """What a user reads of a run that ended without starting its execution: the
    platform's state, exit code and reason, then the end of the run's log."""
    how: str = status.state
    if status.exit_code is not None:
        how += f", exit code {status.exit_code}"
    if status.detail:
        how += f": {status.detail}"
    verb = "is gone" if status.state == "missing" else "ended"
    return (
        f"the {record.orchestrator} run {record.run_id} {verb} ({how}) without starting "
        "the execution" + (f": {tail}" if tail else "")
    )


class StackExecutionHandle(ExecutionHandle[Any]):
    """A handle on an execution that runs elsewhere: polls the journal, and asks the
    orchestrator when a queued execution seems to never start."""

    @property
    def status(self) -> str:
        record = self._record()
        record = reconcile_if_stale(self._journal or current_journal(), record)
        from kitaru._lease import effective_status

        return effective_status(record.status, record.owner, record.lease_until)
