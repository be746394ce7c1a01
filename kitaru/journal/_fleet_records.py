"""Rows about where, when and by whom executions run: API tokens, stacks, deployments
and their tags, queues and workers, schedules and their runs. `kitaru.journal._records`
gives them by name, importing this module on first use (a listing of executions defines
none of these classes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class TokenRecord:
    """A server API token. Only a hash of the secret part is kept; `scope` is `read`
    (GET requests) or `write` (everything)."""

    token_id: str
    name: str
    scope: str
    token_hash: str
    created_at: float
    revoked_at: float | None = None
    last_used_at: float | None = None


@dataclass(slots=True)
class StackRecord:
    """A registered stack: the orchestrator flavor, where artifacts and the journal live,
    the container registry and builder, and the flavor's validated settings (secrets
    only as references such as `env:NAME` or `secret:NAME`)."""

    name: str
    orchestrator: str
    artifact_store: str
    journal: str | None = None
    registry: str | None = None
    builder: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class DeploymentRecord:
    """An immutable snapshot of a flow: its locked image (by digest) and how to start the
    flow inside it. `version` is 1, 2, 3, ... per flow, given by the journal when the
    deployment is recorded and never reused, even after a delete.

    `flow_file` and `import_path` are relative to the project root, which is `/app` in the
    image and `project_root` on the machine it was deployed from. `manifest` maps each
    file of the project that went into the image to its SHA-256 (not loaded by
    `list_deployments`).
    """

    flow: str
    version: int
    image: str
    digest: str
    content_hash: str
    lock_hash: str
    source_hash: str
    kitaru_version: str
    signature: list[dict[str, Any]]
    flow_ref: str
    flow_file: str | None
    import_path: str | None
    project_root: str
    stack: str
    orchestrator: str
    builder: str
    reused: bool
    created_by: str
    created_at: float
    deleted_at: float | None = None
    manifest: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class TagRecord:
    """Where a tag of a flow points. `weight` is the percent of invocations `version`
    takes (100: all of them); below 100 it is a canary and the rest go to
    `previous_version`, the version the tag served before."""

    flow: str
    tag: str
    version: int
    weight: int
    previous_version: int | None
    updated_by: str
    updated_at: float


@dataclass(slots=True)
class TagEvent:
    """One change of a tag, as recorded in the tag history: what it pointed at after
    (`version`, `weight`, `previous_version`; all None when it was removed) and before
    (`from_*`; all None when it was new)."""

    flow: str
    seq: int
    tag: str
    action: str  # tag | untag
    version: int | None
    weight: int | None
    previous_version: int | None
    from_version: int | None
    from_weight: int | None
    from_previous: int | None
    by: str
    at: float


@dataclass(slots=True)
class QueueRecord:
    """A queue's limits; a queue nobody configured has none (and no row)."""

    name: str
    concurrency: int | None = None
    rate_per_minute: int | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class WorkerRecord:
    """A `kitaru worker` process, as it last reported itself."""

    name: str
    host: str
    pid: int
    queues: list[str]
    flows: list[str]
    concurrency: int
    running: int
    started_at: float
    seen_at: float
    stopped_at: float | None = None


@dataclass(slots=True)
class ScheduleRecord:
    name: str
    flow: str  # the flow's name, as an execution records it
    # What a tick starts: {"kind": "flow", "flow_ref": ..., ...} (a queued execution a
    # worker runs) or {"kind": "deployment", "tag": ...} (an invocation of a deployment).
    target: dict[str, Any]
    cron: str
    timezone: str
    args: dict[str, Any]  # {"args": [...], "kwargs": {...}}, JSON
    catchup: str  # skip | all | latest
    next_tick: float
    created_at: float
    updated_at: float
    paused: bool = False


@dataclass(slots=True)
class ScheduleRun:
    schedule: str
    tick: float
    # starting (a deployment's tick, claimed, its invocation under way) | started |
    # failed | skipped
    status: str
    created_at: float  # when it was claimed (or, for a `starting` tick, last taken over)
    exec_id: str | None = None
    error: str | None = None
    by: str | None = None  # the scheduler that fired it (server host:pid, worker name)
    # Filled when read: the execution's status now.
    execution_status: str | None = field(default=None)
