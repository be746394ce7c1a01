"""Queues, workers and schedules over a Kitaru server's API."""

from __future__ import annotations

from collections.abc import Sequence

from kitaru._codec import many, maybe, to_wire
from kitaru._errors import KitaruUsageError
from kitaru.journal._http_requests import MAX_LEASE_SECONDS, MAX_PAGE, HttpBase, _p
from kitaru.journal._records import ArtifactRecord, ExecutionRecord, QueueRecord, WorkerRecord
from kitaru.journal._schedules import ScheduleRecord, ScheduleRun


class QueueRequests(HttpBase):
    """Mixed into `HttpJournal`."""

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
        return maybe(ExecutionRecord, self._post("/runner/claim", body)["execution"])

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
