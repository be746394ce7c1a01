"""The `Journal` protocol over a Kitaru server's API (`KITARU_SERVER_URL`).

Each method is one typed request: a running execution's writes go through the runner
API (`/api/v1/runner/executions/{id}/...`: lease, heartbeat, calls, artifacts, logs,
waits, finish; a worker's `/api/v1/runner/claim`), everything else through the REST API
(reads of records under `/api/v1/records/...`, creating and moving executions, answers,
stacks, settings, deployments, queues, workers). Records travel as JSON with one member per dataclass field
(kitaru/remote/_codec.py). Flows, the CLI and `KitaruClient` use this like any other
journal.

The server shows lease owners masked (kitaru/server/_owners.py); a masked owner is good
as the `expected_owner` of a compare-and-swap, and a process's own owner token, which
it made itself, is what its writes present.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from kitaru._errors import KitaruUsageError, ServerUnreachableError
from kitaru._lease import same_owner
from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    DeploymentRecord,
    EventRecord,
    ExecutionRecord,
    LogRecord,
    QueueRecord,
    StackRecord,
    TagEvent,
    TagRecord,
    WaitRecord,
    WorkerRecord,
)
from kitaru.journal._schedules import ScheduleRecord, ScheduleRun
from kitaru.remote._codec import from_wire, many, maybe, to_wire
from kitaru.remote._connection import Connection, connect

# The server's largest page; a larger `limit` reads the newest this many.
MAX_PAGE = 1000
# How long the execution a `finish` answered with stands for a read of it.
T = TypeVar("T")

FINISHED_FRESH_SECONDS = 5.0
# The longest lease the server grants from its own clock (a claim asks for no more).
MAX_LEASE_SECONDS = 3600.0


def _p(part: str | int) -> str:
    return quote(str(part), safe="")


class HttpJournal:
    def __init__(self, url: str, connection: Connection | None = None) -> None:
        self.url = url.rstrip("/")
        self._conn = connection or connect(self.url)
        # Fail on a wrong URL or token now, before a flow starts running.
        self._conn.info()
        # The execution as `finish` left it (and when), for the read that follows it: a
        # run token is revoked when its run finishes the execution, and could not read
        # it afterwards.
        self._finished: dict[str, tuple[float, ExecutionRecord]] = {}

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._conn.request("GET", path, params=params).json()

    def _post(self, path: str, body: dict[str, Any], ok: tuple[int, ...] = (200,)) -> Any:
        self._finished.clear()  # a change through this journal: read the record again
        return self._conn.request("POST", path, json=body, ok=ok).json()

    def _put(self, path: str, body: dict[str, Any]) -> Any:
        self._finished.clear()
        return self._conn.request("PUT", path, json=body).json()

    def retention(self, op: str, body: dict[str, Any]) -> Any:
        """`gc` or `delete` on the server (kitaru/_retention.py; admin tokens)."""
        return self._post(f"/retention/{op}", body)

    def _runner(self, exec_id: str, op: str, body: dict[str, Any]) -> Any:
        return self._post(f"/runner/executions/{_p(exec_id)}/{op}", body)

    # executions
    def create_execution(self, execution: ExecutionRecord, inputs: Sequence[ArtifactRecord]) -> str:
        body = {"execution": to_wire(execution), "inputs": to_wire(list(inputs))}

        def send() -> str:
            return str(self._post("/executions", body, ok=(201,))["exec_id"])

        # A lost answer: the execution is there under its own id (a key that another
        # start holds is answered by sending again: the server returns the holder).
        return _sent_once(
            send, lambda: execution.exec_id if self.get_execution(execution.exec_id) else None
        )

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        finished = self._finished.pop(exec_id, None)
        if finished is not None and time.monotonic() - finished[0] < FINISHED_FRESH_SECONDS:
            return finished[1]
        return maybe(ExecutionRecord, self._get(f"/records/executions/{_p(exec_id)}"))

    def list_executions(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        replayed_from: str | None = None,
        idempotency_key: str | None = None,
        limit: int = 100,
    ) -> list[ExecutionRecord]:
        params = {
            "flow": flow,
            "status": status,
            "replayed_from": replayed_from,
            "idempotency_key": idempotency_key,
            "limit": max(1, min(limit, MAX_PAGE)),
        }
        return many(ExecutionRecord, self._get("/records/executions", params))

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
        body = {
            "owner": owner,
            "expected_owner": expected_owner,
            "statuses": list(statuses),
            "now": now,
            "lease_until": lease_until,
        }

        def landed() -> bool | None:
            record = self.get_execution(exec_id)
            mine = record is not None and record.status == "running"
            return True if mine and same_owner(record.owner, owner) else None  # type: ignore[union-attr]

        return _sent_once(lambda: bool(self._runner(exec_id, "lease", body)["taken"]), landed)

    def heartbeat(self, exec_id: str, *, owner: str, now: float, lease_until: float) -> bool | None:
        body = {"owner": owner, "now": now, "lease_until": lease_until}
        cancel: bool | None = self._runner(exec_id, "heartbeat", body)["cancel"]
        return cancel

    def finish(
        self,
        exec_id: str,
        *,
        owner: str,
        status: str,
        now: float,
        error: str | None = None,
        result: ArtifactRecord | None = None,
    ) -> bool:
        body = {
            "owner": owner,
            "status": status,
            "now": now,
            "error": error,
            "result": to_wire(result),
        }

        def send() -> bool:
            answer = self._runner(exec_id, "finish", body)
            if answer["finished"] and answer.get("execution") is not None:
                record = from_wire(ExecutionRecord, answer["execution"])
                self._finished[exec_id] = (time.monotonic(), record)
            return bool(answer["finished"])

        def landed() -> bool | None:
            r = self.get_execution(exec_id)
            done = r is not None and r.owner is None and (r.status, r.updated_at) == (status, now)
            return True if done else None

        return _sent_once(send, landed)

    def request_cancel(self, exec_id: str, *, now: float) -> None:
        self._post(f"/executions/{_p(exec_id)}/cancel-request", {"now": now})

    def cancel_idle(self, exec_id: str, *, expected_owner: str | None, now: float) -> bool:
        body = {"expected_owner": expected_owner, "now": now}
        return bool(self._post(f"/executions/{_p(exec_id)}/cancel-idle", body)["cancelled"])

    def cancel_execution(self, exec_id: str) -> None:
        """The server's own cancel (not a journal method): a running execution whose
        lease is live is ended by the server, which a client may not do itself."""
        self._post(f"/executions/{_p(exec_id)}/cancel", {"grace": 0})

    def set_metadata(self, exec_id: str, metadata: dict[str, object]) -> None:
        def send() -> bool:  # a merge: the same twice is the same once
            self._runner(exec_id, "metadata", {"metadata": to_wire(metadata)})
            return True

        _sent_once(send, lambda: None)

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
        body = {
            "to": to,
            "from_statuses": list(from_statuses),
            "expected_owner": expected_owner,
            "now": now,
            "error": error,
        }
        return bool(self._post(f"/executions/{_p(exec_id)}/transition", body)["moved"])

    def set_run_id(self, exec_id: str, run_id: str, orchestrator: str) -> None:
        self._finished.clear()
        self._conn.request(
            "PUT",
            f"/executions/{_p(exec_id)}/run",
            json={"run_id": run_id, "orchestrator": orchestrator},
        )

    # queues and workers: the server stamps claims and leases, and counts, by its clock
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
        if not flows:
            return None
        body = {
            "queue": queue,
            "flows": list(flows),
            "owner": owner,
            "worker": worker,
            "lease_seconds": min(max(lease_until - now, 1.0), MAX_LEASE_SECONDS),
        }
        # Claims are idempotent on the server (one owner token per claim): a claim
        # whose answer was lost, sent again, answers with the execution it took.
        return _sent_once(
            lambda: maybe(ExecutionRecord, self._post("/runner/claim", body)["execution"]),
            lambda: None,
        )

    def queue_counts(self, now: float) -> dict[str, dict[str, object]]:
        counts: dict[str, dict[str, object]] = self._get("/records/queue-counts")
        return counts

    def put_queue(self, queue: QueueRecord) -> None:
        self._put(f"/records/queues/{_p(queue.name)}", to_wire(queue))

    def get_queue(self, name: str) -> QueueRecord | None:
        return maybe(QueueRecord, self._get(f"/records/queues/{_p(name)}"))

    def list_queues(self) -> list[QueueRecord]:
        return many(QueueRecord, self._get("/records/queues"))

    def delete_queue(self, name: str) -> bool:
        response = self._conn.request("DELETE", f"/records/queues/{_p(name)}")
        return bool(response.json()["deleted"])

    def put_worker(self, worker: WorkerRecord) -> None:
        self._put(f"/records/workers/{_p(worker.name)}", to_wire(worker))

    def worker_seen(self, name: str, *, running: int, now: float, stopped: bool = False) -> None:
        body = {"running": running, "now": now, "stopped": stopped}
        self._post(f"/records/workers/{_p(name)}/seen", body)

    def list_workers(self) -> list[WorkerRecord]:
        return many(WorkerRecord, self._get("/records/workers"))

    # checkpoint calls
    def calls(self, exec_id: str) -> list[CallRecord]:
        return many(CallRecord, self._get(f"/records/executions/{_p(exec_id)}/calls"))

    def commit_call(
        self,
        call: CallRecord,
        output: ArtifactRecord | None,
        logs: Sequence[LogRecord],
        *,
        owner: str,
    ) -> bool:
        # The output travels once, as `output`, not again inside the call.
        bare = dataclasses.replace(call, output=None) if call.output is not None else call
        body = {
            "owner": owner,
            "call": to_wire(bare),
            "output": to_wire(output),
            "logs": to_wire(list(logs)),
        }

        def landed() -> bool | None:
            for row in self.calls(call.exec_id):
                if row.seq == call.seq:
                    mine = (row.key, row.status, row.ended_at, row.attempts)
                    return mine == (call.key, call.status, call.ended_at, call.attempts) or None
            return None

        return _sent_once(
            lambda: bool(self._runner(call.exec_id, "calls", body)["committed"]), landed
        )

    # Caching across executions is a journal lookup the runner API does not offer (yet):
    # through a server, a `cache=True` checkpoint runs as if `cache` were off.
    def remember_call(
        self, source_hash: str, input_key: str, *, exec_id: str, seq: int, now: float
    ) -> None:
        return None

    def find_cached_call(
        self, source_hash: str, input_key: str, *, since: float
    ) -> CallRecord | None:
        return None

    def copy_calls(
        self, source: str, target: str, *, before_seq: int, overridden: Collection[str] = ()
    ) -> int:
        body: dict[str, Any] = {"source": source, "before_seq": before_seq}
        if overridden:
            body["overridden"] = sorted(overridden)

        def landed() -> int | None:  # a lost answer sent again: the copies are there
            copied = [c for c in self.calls(target) if c.seq < before_seq and c.reused_from]
            return len(copied) or None

        return _sent_once(
            lambda: int(self._post(f"/executions/{_p(target)}/copy-calls", body)["copied"]),
            landed,
        )

    # artifacts
    def put_artifact(self, artifact: ArtifactRecord) -> None:
        def send() -> bool:
            self._runner(artifact.exec_id, "artifacts", {"artifact": to_wire(artifact)})
            return True

        _sent_once(send, lambda: True if self.get_artifact(artifact.artifact_id) else None)

    def get_artifact(self, artifact_id: str) -> ArtifactRecord | None:
        return maybe(ArtifactRecord, self._get(f"/records/artifacts/{_p(artifact_id)}"))

    def list_artifacts(self, exec_id: str, *, producer: str | None = None) -> list[ArtifactRecord]:
        found = self._get(f"/records/executions/{_p(exec_id)}/artifacts", {"producer": producer})
        return many(ArtifactRecord, found)

    def find_artifact(self, exec_id: str, name: str) -> ArtifactRecord | None:
        found = self._get(f"/records/executions/{_p(exec_id)}/artifacts/named/{_p(name)}")
        return maybe(ArtifactRecord, found)

    # waits
    def create_wait(self, wait: WaitRecord, *, owner: str) -> bool:
        body = {"owner": owner, "wait": to_wire(wait)}

        def landed() -> bool | None:
            found = [w for w in self.waits(wait.exec_id) if w.key == wait.key]
            return True if found and found[0].created_at == wait.created_at else None

        return _sent_once(
            lambda: bool(self._runner(wait.exec_id, "waits", body)["created"]), landed
        )

    def waits(self, exec_id: str) -> list[WaitRecord]:
        return many(WaitRecord, self._get(f"/records/executions/{_p(exec_id)}/waits"))

    def pending_waits(self) -> list[WaitRecord]:
        return many(WaitRecord, self._get("/records/waits"))

    def answer_wait(self, exec_id: str, key: str, value: ArtifactRecord, *, now: float) -> bool:
        """The answer goes as JSON: the server checks it against the wait's schema and
        stores it as JSON, whatever the artifact's serializer was here."""
        from kitaru import _serialize
        from kitaru._artifact_io import read_bytes

        ok, plain = _serialize.to_jsonable(value.serializer, read_bytes(value, None))
        if not ok:
            raise KitaruUsageError(
                f"the answer to wait {key!r} is {value.serializer} data; answers are JSON"
            )
        body = {
            "value": plain,
            "artifact_id": value.artifact_id,
            "timed_out": bool(value.metadata.get("timed_out")),
        }
        try:
            self._post(f"/executions/{_p(exec_id)}/waits/{_p(key)}/answer", body)
        except KitaruUsageError:
            return False  # answered already (409): the journal's "not pending"
        return True

    def copy_waits(self, source: str, target: str, *, before_seq: int) -> int:
        body = {"source": source, "before_seq": before_seq}

        def landed() -> int | None:
            copied = [w for w in self.waits(target) if w.seq < before_seq]
            return len(copied) or None

        return _sent_once(
            lambda: int(self._post(f"/executions/{_p(target)}/copy-waits", body)["copied"]),
            landed,
        )

    # logs
    def append_logs(self, logs: Sequence[LogRecord]) -> None:
        by_exec: dict[str, list[LogRecord]] = {}
        for line in logs:
            by_exec.setdefault(line.exec_id, []).append(line)
        for exec_id, lines in by_exec.items():
            first = lines[0]

            def send(exec_id: str = exec_id, lines: list[LogRecord] = lines) -> bool:
                self._runner(exec_id, "logs", {"logs": to_wire(lines)})
                return True

            def landed(exec_id: str = exec_id, first: LogRecord = first) -> bool | None:
                seen = ((g.ts, g.text) for g in self.logs(exec_id))
                return True if (first.ts, first.text) in seen else None

            _sent_once(send, landed)

    def logs(self, exec_id: str) -> list[LogRecord]:
        return many(LogRecord, self._get(f"/records/executions/{_p(exec_id)}/logs"))

    # the live feed
    def append_events(
        self, exec_id: str, events: Sequence[EventRecord], *, owner: str, again: bool = False
    ) -> bool:
        # `again` is the server's own rule: a request may reach it twice (a connection
        # cut after it was read is sent again), so every batch leaves out what is stored.
        body = {"owner": owner, "events": to_wire(list(events))}
        return bool(self._runner(exec_id, "events", body)["appended"])

    def events(self, exec_id: str, *, after: int = 0, limit: int = 1000) -> list[EventRecord]:
        params = {"after": after, "limit": min(limit, MAX_PAGE)}
        return many(EventRecord, self._get(f"/records/executions/{_p(exec_id)}/events", params))

    # stacks and settings
    def put_stack(self, stack: StackRecord, *, replace: bool = False) -> bool:
        body = {"stack": to_wire(stack), "replace": replace}
        return bool(self._put(f"/records/stacks/{_p(stack.name)}", body)["stored"])

    def get_stack(self, name: str) -> StackRecord | None:
        return maybe(StackRecord, self._get(f"/records/stacks/{_p(name)}"))

    def list_stacks(self) -> list[StackRecord]:
        return many(StackRecord, self._get("/records/stacks"))

    def delete_stack(self, name: str) -> bool:
        response = self._conn.request("DELETE", f"/records/stacks/{_p(name)}")
        return bool(response.json()["deleted"])

    def get_setting(self, key: str) -> str | None:
        value: str | None = self._get(f"/records/settings/{_p(key)}")
        return value

    def set_setting(self, key: str, value: str | None) -> None:
        self._put(f"/records/settings/{_p(key)}", {"value": value})

    # deployments and tags
    def create_deployment(
        self, deployment: DeploymentRecord, *, tag: str | None = None
    ) -> DeploymentRecord:
        body = {"deployment": to_wire(deployment), "tag": tag}
        created = self._post("/deployments", body, ok=(201,))
        # The server records who deployed as the token that asked.
        by = str(created.get("created_by") or deployment.created_by)
        return dataclasses.replace(deployment, version=int(created["version"]), created_by=by)

    def get_deployment(self, flow: str, version: int) -> DeploymentRecord | None:
        found = self._get(f"/records/deployments/{_p(flow)}/{_p(version)}")
        return maybe(DeploymentRecord, found)

    def list_deployments(self, flow: str | None = None) -> list[DeploymentRecord]:
        return many(DeploymentRecord, self._get("/records/deployments", {"flow": flow}))

    def delete_deployment(self, flow: str, version: int, *, now: float) -> bool:
        path = f"/records/deployments/{_p(flow)}/{_p(version)}/delete"
        return bool(self._post(path, {"now": now})["deleted"])

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
        body = {"version": version, "weight": weight, "by": by, "now": now}
        return from_wire(
            TagRecord, self._put(f"/records/deployments/{_p(flow)}/tags/{_p(tag)}", body)
        )

    def remove_tag(self, flow: str, tag: str, *, by: str, now: float) -> bool:
        path = f"/records/deployments/{_p(flow)}/tags/{_p(tag)}/remove"
        return bool(self._post(path, {"by": by, "now": now})["removed"])

    def get_tag(self, flow: str, tag: str) -> TagRecord | None:
        return maybe(TagRecord, self._get(f"/records/deployments/{_p(flow)}/tags/{_p(tag)}"))

    def list_tags(self, flow: str) -> list[TagRecord]:
        return many(TagRecord, self._get(f"/records/deployments/{_p(flow)}/tags"))

    def tag_history(self, flow: str) -> list[TagEvent]:
        return many(TagEvent, self._get(f"/records/deployments/{_p(flow)}/history"))

    # schedules: a server fires them itself, so a scheduler reaching the journal through
    # one (a worker with KITARU_SERVER_URL) finds none due and claims nothing.
    def put_schedule(self, s: ScheduleRecord) -> bool:
        created = self._post("/schedules", to_wire(s), ok=(200, 409))
        return bool(created.get("created"))

    def get_schedule(self, name: str) -> ScheduleRecord | None:
        return maybe(ScheduleRecord, self._get(f"/schedules/{_p(name)}"))

    def list_schedules(self) -> list[ScheduleRecord]:
        return many(ScheduleRecord, self._get("/schedules"))

    def due_schedules(self, now: float) -> list[ScheduleRecord]:
        return []

    def pause_schedule(
        self, name: str, *, paused: bool, next_tick: float | None, now: float
    ) -> bool:
        action = "pause" if paused else "resume"
        return bool(self._post(f"/schedules/{_p(name)}/{action}", {})["changed"])

    def delete_schedule(self, name: str) -> bool:
        self._finished.clear()
        response = self._conn.request("DELETE", f"/schedules/{_p(name)}")
        return bool(response.json()["deleted"])

    def fire_schedule(
        self,
        name: str,
        *,
        expected_next: float,
        next_tick: float,
        runs: Sequence[ScheduleRun],
        executions: Sequence[tuple[ExecutionRecord, Sequence[ArtifactRecord]]] = (),
    ) -> bool:
        raise KitaruUsageError("schedules are fired by the server, not through it")

    def end_schedule_run(
        self, name: str, tick: float, *, status: str, exec_id: str | None, error: str | None
    ) -> None:
        raise KitaruUsageError("schedules are fired by the server, not through it")

    def schedule_runs(self, name: str, *, limit: int = 100) -> list[ScheduleRun]:
        rows = self._get(f"/schedules/{_p(name)}/history", {"limit": min(limit, MAX_PAGE)})
        return many(ScheduleRun, rows)

    def served_stores(self) -> list[str]:
        """The artifact stores the server serves (their roots, as it names them)."""
        info = self._conn.info()
        return [str(s) for s in info.get("artifact_stores") or [info["artifact_store"]]]

    def scope(self) -> str:
        """The scope of this process's token (read, write, admin or run)."""
        return str(self._conn.info().get("scope", ""))

    def close(self) -> None:
        """The connection is shared by every journal on this server in the process."""


def _sent_once(send: Callable[[], T], landed: Callable[[], T | None]) -> T:
    """A write the server carries out once. The connection sends a request again only
    when it cannot have arrived, and a network that resets connections mid-request
    breaks even that (a keep-alive connection cut after the server read the request):
    so when an answer was lost, or is a refusal that may answer an earlier copy of this
    same write ("exists already" for a new id; a refused second send), read whether the
    write landed, and send it again only if not. (A plain refusal is believed: owners
    read through a server are masked, and another thread of this process may hold the
    lease it refuses.) The runner API's writes are guarded by the owner, so a
    second send of one that did not land is the first that does."""
    for attempt in (1, 2):
        try:
            result = send()
        except ServerUnreachableError:
            if attempt == 2:
                raise
        except KitaruUsageError:
            done = landed()
            if done is None:
                raise
            return done
        else:
            if result or attempt == 1:
                return result
            done = landed()  # refused: maybe by the lost first copy's own effect
            return result if done is None else done
        done = landed()
        if done is not None:
            return done
    raise AssertionError("unreachable")
