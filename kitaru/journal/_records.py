"""Rows of the journal, as plain dataclasses shared by every journal backend."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal


def call_output_id(exec_id: str, seq: int) -> str:
    """The artifact id of a checkpoint call's output: it names the execution and position,
    so the journal finds the output in the call's own row (no separate artifact row)."""
    return f"ka_{exec_id.removeprefix('kx_')}_{seq}"


def parse_call_output_id(artifact_id: str) -> tuple[str, int] | None:
    """(exec_id, position) for a call output id, None for other artifact ids."""
    prefix, _, rest = artifact_id.partition("_")
    exec_part, sep, seq = rest.partition("_")
    if prefix != "ka" or not sep or not seq.isdigit():
        return None
    return f"kx_{exec_part}", int(seq)


ExecutionStatus = Literal[
    "queued", "running", "waiting", "completed", "failed", "crashed", "cancelled"
]
TERMINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})


@dataclass(slots=True)
class ExecutionRecord:
    exec_id: str
    flow: str
    status: str
    created_at: float
    updated_at: float
    ended_at: float | None = None
    # How to import the flow function again (resume, replay): "module:qualname",
    # plus the script file and the sys.path entry it was run with.
    flow_ref: str = ""
    flow_file: str | None = None
    import_path: str | None = None
    python: str | None = None
    stack: str = "local"
    orchestrator: str = "local"
    run_id: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None
    lease_until: float | None = None
    cancel_requested: bool = False
    runs: int = 0
    replayed_from: str | None = None
    replay_point: str | None = None
    error: str | None = None
    result_artifact: str | None = None
    artifact_store: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # The command line of the process that started it: a script's top-level code sees
    # the same sys.argv when it is loaded again to resume.
    argv: list[str] = field(default_factory=list)
    # Set when the execution runs in a container: the host directory its project (and
    # so `flow_file` and `import_path`) was in when it was started.
    project_root: str | None = None
    # Set when the execution is an invocation of a deployment: the version it ran (its
    # image) and the invocation id that chose it (a retry with the same id picks the same
    # version of a canary).
    deployment_version: int | None = None
    invocation_id: str | None = None
    # Workers (kitaru/_worker.py): the queue the execution waits in for a worker (None:
    # `default`, where a server leaves executions it continues), its priority (higher
    # first), and the worker that claimed it last and when.
    queue: str | None = None
    priority: int = 0
    worker: str | None = None
    claimed_at: float | None = None
    # The idempotency key it was started with (`flow.run(..., idempotency_key=K)`): one
    # execution per flow and key (kitaru/_idempotency.py).
    idempotency_key: str | None = None


@dataclass(slots=True)
class ArtifactRecord:
    artifact_id: str
    exec_id: str
    name: str
    version: int
    producer: str  # checkpoint | save | wait | input | result | override | llm
    producer_key: str | None
    type_ref: str
    serializer: str
    content_hash: str
    size: int
    uri: str | None  # None when the bytes are inline in the journal
    created_at: float
    inline: bytes | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CallRecord:
    exec_id: str
    key: str
    seq: int
    name: str
    func: str
    status: str  # completed | failed
    started_at: float
    ended_at: float
    run: int
    kind: str = "checkpoint"
    attempts: int = 1
    output_artifact: str | None = None
    error: str | None = None
    traceback: str | None = None
    reused_from: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Filled by `calls_with_outputs`: the output artifact, with inline bytes.
    output: ArtifactRecord | None = None
    # Where the call was made: the branch (the flow body is "", a task or thread the flow
    # started is "1", "2", "2.1", ...) and its position there (None in rows written before
    # branches existed: the position is then `seq`), and a digest of its inputs.
    branch: str = ""
    pos: int | None = None
    fingerprint: str | None = None


def given_call(
    *,
    exec_id: str,
    run: int,
    key: str,
    seq: int,
    name: str,
    func: str,
    kind: str,
    branch: str,
    pos: int | None,
    fingerprint: str | None,
    output: ArtifactRecord,
    metadata: dict[str, Any],
    reused_from: str | None = None,
    attempts: int = 1,
) -> CallRecord:
    """A call completed now with an output its body did not compute: a cache hit
    (kitaru/_cache.py, `reused_from` its source) or a replay's override
    (kitaru/_replay.py)."""
    now = time.time()
    return CallRecord(
        exec_id=exec_id,
        key=key,
        seq=seq,
        name=name,
        func=func,
        status="completed",
        started_at=now,
        ended_at=now,
        run=run,
        kind=kind,
        attempts=attempts,
        output_artifact=output.artifact_id,
        reused_from=reused_from,
        metadata=metadata,
        output=output,
        branch=branch,
        pos=pos,
        fingerprint=fingerprint,
    )


@dataclass(slots=True)
class WaitRecord:
    exec_id: str
    key: str
    name: str
    seq: int
    question: str | None
    schema: dict[str, Any]
    created_at: float
    status: str = "pending"  # pending | answered
    timeout_at: float | None = None
    default: Any = None
    has_default: bool = False
    call_site: str | None = None
    answered_at: float | None = None
    value_artifact: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LogRecord:
    exec_id: str
    call_key: str | None
    run: int
    ts: float
    stream: str  # stdout | stderr | log
    text: str


@dataclass(slots=True)
class EventRecord:
    """One entry of an execution's live feed (kitaru/_events.py): an event a flow emitted,
    a call that started or ended, output as it was printed, a wait, a run's start and end.
    `seq` numbers an execution's entries 1, 2, 3, ... in the order they were stored; the
    journal gives it (a row sent with another number takes the next one)."""

    exec_id: str
    seq: int
    run: int
    ts: float
    # event | call_started | call_ended | calls_ended | output | wait | run_started | run_ended
    kind: str
    name: str
    call_key: str | None = None
    data: Any = None

    @property
    def reused(self) -> bool:
        """An event a replay reused with the call that emitted it: copied from the source
        execution's feed when the replay was made, numbered before the replay's runs, as
        run 0."""
        return self.run == 0


# The rows about where, when and by whom executions run (`_fleet_records`) are defined on
# first use: a dataclass compiles its methods when it is defined (about 0.5 ms each), and
# `kitaru executions list` needs none of them.
FLEET_RECORDS = frozenset(
    {"TokenRecord", "StackRecord", "DeploymentRecord", "TagRecord", "TagEvent", "QueueRecord",
     "WorkerRecord", "ScheduleRecord", "ScheduleRun"}
)  # fmt: skip

__all__ = [
    "TERMINAL_STATUSES",
    "ArtifactRecord",
    "CallRecord",
    "DeploymentRecord",
    "EventRecord",
    "ExecutionRecord",
    "ExecutionStatus",
    "LogRecord",
    "QueueRecord",
    "ScheduleRecord",
    "ScheduleRun",
    "StackRecord",
    "TagEvent",
    "TagRecord",
    "TokenRecord",
    "WaitRecord",
    "WorkerRecord",
    "call_output_id",
    "parse_call_output_id",
]

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import (
        DeploymentRecord,
        QueueRecord,
        ScheduleRecord,
        ScheduleRun,
        StackRecord,
        TagEvent,
        TagRecord,
        TokenRecord,
        WorkerRecord,
    )


def __getattr__(name: str) -> Any:
    if name not in FLEET_RECORDS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from kitaru.journal import _fleet_records

    value = globals()[name] = getattr(_fleet_records, name)
    return value
