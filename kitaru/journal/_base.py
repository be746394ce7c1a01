"""The journal contract: what the runtime, the CLI and the server need from a journal.

Every backend (SQLite, PostgreSQL, the server's HTTP client) implements `Journal`,
and one conformance suite (tests/journal) runs against each. Methods that change
an execution while it runs take the caller's lease `owner` and do nothing (returning
False) when the caller no longer owns the execution: a process whose lease was taken
over can never write into the execution again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Protocol

from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    WaitRecord,
)
from kitaru.journal._snapshot import ExecutionSnapshot

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import (
        DeploymentRecord,
        QueueRecord,
        ScheduleRecord,
        ScheduleRun,
        StackRecord,
        TagEvent,
        TagRecord,
        WorkerRecord,
    )


class Journal(Protocol):
    url: str

    # executions
    def create_execution(self, execution: ExecutionRecord, inputs: Sequence[ArtifactRecord]) -> str:
        """Insert a new execution (with its lease) and its input artifacts in one
        transaction; returns its id. When `execution.idempotency_key` is already taken
        for its flow, nothing is written and the id returned is the execution that holds
        the key (kitaru/_idempotency.py)."""

    def get_execution(self, exec_id: str) -> ExecutionRecord | None: ...

    def execution_snapshot(self, exec_id: str) -> ExecutionSnapshot | None:
        """The execution with its calls, waits, logs (if it failed) and result record,
        read at one moment (kitaru/journal/_snapshot.py)."""

    def list_executions(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        replayed_from: str | None = None,
        idempotency_key: str | None = None,
        limit: int = 100,
    ) -> list[ExecutionRecord]:
        """Newest first."""

    def take_lease(
        self,
        exec_id: str,
        *,
        owner: str,
        expected_owner: str | None,
        statuses: Sequence[str],
        now: float,
        lease_until: float,
    ) -> bool:
        """Atomically become the owner iff the current owner is `expected_owner` and the
        status is one of `statuses`; marks the execution running and counts a new run."""

    def heartbeat(self, exec_id: str, *, owner: str, now: float, lease_until: float) -> bool | None:
        """Extend the lease. Returns whether cancellation was requested, None if not the owner."""

    def finish(
        self,
        exec_id: str,
        *,
        owner: str,
        status: str,
        now: float,
        error: str | None = None,
        result: ArtifactRecord | None = None,
        events: Sequence[EventRecord] = (),
    ) -> bool:
        """Release the lease and set the status (waiting, completed, failed, cancelled);
        False, writing nothing, unless `owner` holds the lease. `events`: the run's last
        feed entries, appended as `append_events` would, in the same write as the status
        (so one commit ends a run, and its end is never seen without its entries)."""

    def request_cancel(self, exec_id: str, *, now: float) -> None: ...

    def cancel_idle(self, exec_id: str, *, expected_owner: str | None, now: float) -> bool:
        """Cancel an execution that is not running (waiting, failed, crashed)."""

    def set_metadata(self, exec_id: str, metadata: dict[str, object]) -> None: ...

    def transition(
        self,
        exec_id: str,
        *,
        to: str,
        from_statuses: Sequence[str],
        expected_owner: str | None,
        now: float,
        error: str | None = None,
    ) -> bool:
        """Move an execution nobody runs (owner `expected_owner`, status one of
        `from_statuses`, no cancel requested) to `to`, atomically: `queued` before it is
        submitted to a container, `failed` when its container never started it."""

    def set_run_id(self, exec_id: str, run_id: str, orchestrator: str) -> None: ...

    # queues and workers (kitaru/journal/_queues.py)
    def claim(
        self,
        *,
        queue: str,
        flows: Sequence[str],
        owner: str,
        worker: str,
        now: float,
        lease_until: float,
    ) -> ExecutionRecord | None:
        """Take the next execution of `flows` waiting in `queue` under `owner`'s lease, if
        the queue's limits allow one more now."""

    def queue_counts(self, now: float) -> dict[str, dict[str, object]]: ...

    def put_queue(self, queue: QueueRecord) -> None: ...

    def get_queue(self, name: str) -> QueueRecord | None: ...

    def list_queues(self) -> list[QueueRecord]: ...

    def delete_queue(self, name: str) -> bool: ...

    def put_worker(self, worker: WorkerRecord) -> None: ...

    def worker_seen(
        self, name: str, *, running: int, now: float, stopped: bool = False
    ) -> None: ...

    def list_workers(self) -> list[WorkerRecord]: ...

    # checkpoint calls
    def calls(self, exec_id: str) -> list[CallRecord]:
        """Every call of the execution in position order, each with its output record."""

    def commit_call(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        logs: Sequence[LogRecord],
        *,
        owner: str,
    ) -> bool:
        """Record a finished call (and its output and logs) in one transaction."""

    def remember_call(
        self, source_hash: str, input_key: str, *, exec_id: str, seq: int, now: float
    ) -> None:
        """Offer a completed call of a `cache=True` checkpoint to later executions."""

    def find_cached_call(
        self, source_hash: str, input_key: str, *, since: float
    ) -> CallRecord | None:
        """The newest completed call remembered under these keys at or after `since`."""

    def copy_calls(
        self, source: str, target: str, *, before_seq: int, overridden: Collection[str] = ()
    ) -> int:
        """Replay: make `target` reuse the source's completed calls before `before_seq`,
        and the events they emitted (but not those of the `overridden` calls, whose
        outputs the replay replaces)."""

    # artifacts
    def put_artifact(self, artifact: ArtifactRecord) -> None: ...

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None: ...

    def list_artifacts(self, exec_id: str, *, producer: str | None = None) -> list[ArtifactRecord]:
        """Artifacts the execution produced (inline bytes not loaded), oldest first;
        `producer` keeps one kind (input, checkpoint, save, wait, result, ...)."""

    def find_artifact(self, exec_id: str, name: str) -> ArtifactRecord | None:
        """The newest version of a named artifact in an execution."""

    # waits
    def create_wait(self, wait: WaitRecord, *, owner: str) -> bool: ...

    def waits(self, exec_id: str) -> list[WaitRecord]: ...

    def pending_waits(self) -> list[WaitRecord]: ...

    def answer_wait(self, exec_id: str, key: str, value: ArtifactRecord, *, now: float) -> bool:
        """Store the answer iff the wait is still pending."""

    def copy_waits(self, source: str, target: str, *, before_seq: int) -> int: ...

    # logs
    def append_logs(self, logs: Sequence[LogRecord]) -> None: ...

    def logs(self, exec_id: str) -> list[LogRecord]: ...

    # the live feed (kitaru/_events.py)
    def append_events(
        self, exec_id: str, events: Sequence[EventRecord], *, owner: str, again: bool = False
    ) -> bool:
        """Append entries to the execution's feed in one transaction, numbered after its
        last (the records' own `seq` is ignored); False, storing nothing, unless `owner`
        holds the execution's lease. `again`: some entries may have been stored by an
        earlier send whose answer was lost; those (equal in every field but the number)
        are left out."""

    def events(self, exec_id: str, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        """Entries numbered after `after`, in order, at most `limit`."""

    # stacks and settings
    def put_stack(self, stack: StackRecord, *, replace: bool = False) -> bool:
        """Insert a stack; with `replace` overwrite one of the same name. False if it
        exists and `replace` is not set."""

    def get_stack(self, name: str) -> StackRecord | None: ...

    def list_stacks(self) -> list[StackRecord]:
        """By name."""

    def delete_stack(self, name: str) -> bool: ...

    def get_setting(self, key: str) -> str | None: ...

    def set_setting(self, key: str, value: str | None) -> None:
        """Store a setting (the active stack); None removes it."""

    # deployments and tags
    def create_deployment(
        self, deployment: DeploymentRecord, *, tag: str | None = None
    ) -> DeploymentRecord:
        """Record a deployment under the flow's next version number (1, 2, 3, ...; never
        reused), allocated atomically, and point `tag` at it in the same transaction.
        Returns the record with its version."""

    def get_deployment(self, flow: str, version: int) -> DeploymentRecord | None:
        """The version, deleted or not (`deleted_at`), with its manifest."""

    def list_deployments(self, flow: str | None = None) -> list[DeploymentRecord]:
        """Versions not deleted, by flow, newest first, without their manifests."""

    def delete_deployment(self, flow: str, version: int, *, now: float) -> bool:
        """Mark the version deleted; False if it is missing, deleted already, or a tag
        points at it (as its version or as the rest of a canary)."""

    def set_tag(
        self,
        flow: str,
        tag: str,
        version: int,
        *,
        weight: int | None = None,
        by: str,
        now: float,
    ) -> TagRecord:
        """Point `tag` at `version` atomically and append the change to the tag history.
        With `weight` (1-99) the version becomes a canary taking that percent of the
        invocations; the rest go to the version the tag served. Raises NotFoundError for
        a version that does not exist, InvalidInputError for a weight outside 1-99 and
        KitaruUsageError for a canary with nothing to share the invocations with."""

    def remove_tag(self, flow: str, tag: str, *, by: str, now: float) -> bool:
        """Remove the tag (recorded in the history); False if it did not exist."""

    def get_tag(self, flow: str, tag: str) -> TagRecord | None: ...

    def list_tags(self, flow: str) -> list[TagRecord]:
        """By tag name."""

    def tag_history(self, flow: str) -> list[TagEvent]:
        """Every change of the flow's tags, oldest first."""

    # schedules (kitaru/journal/_schedules.py)
    def put_schedule(self, s: ScheduleRecord) -> bool:
        """Insert a new schedule; False when one of that name exists."""

    def get_schedule(self, name: str) -> ScheduleRecord | None: ...

    def list_schedules(self) -> list[ScheduleRecord]: ...

    def due_schedules(self, now: float) -> list[ScheduleRecord]:
        """Unpaused schedules whose next tick is at or before `now`."""

    def pause_schedule(
        self, name: str, *, paused: bool, next_tick: float | None, now: float
    ) -> bool: ...

    def delete_schedule(self, name: str) -> bool: ...

    def fire_schedule(
        self,
        name: str,
        *,
        expected_next: float,
        next_tick: float,
        runs: Sequence[ScheduleRun],
        executions: Sequence[tuple[ExecutionRecord, Sequence[ArtifactRecord]]] = (),
    ) -> bool:
        """Claim ticks and store their executions in one transaction (compare-and-set)."""

    def end_schedule_run(
        self, name: str, tick: float, *, status: str, exec_id: str | None, error: str | None
    ) -> None: ...

    def stalled_schedule_runs(self, before: float) -> list[ScheduleRun]:
        """Ticks still `starting` that were (last) taken before `before`, oldest first."""

    def retake_schedule_run(
        self, name: str, tick: float, *, taken_at: float, now: float, by: str
    ) -> bool:
        """Compare-and-set on a `starting` tick's taking time; True for the one winner."""

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[ScheduleRun]:
        """Newest first."""

    def close(self) -> None: ...
