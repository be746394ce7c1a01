"""The `Journal` protocol over a Kitaru server's API (`KITARU_SERVER_URL`).

Each method is one typed request: a running execution's writes go through the runner
API (`/api/v1/runner/executions/{id}/...`: lease, heartbeat, calls, artifacts, logs,
waits, finish; a worker's `/api/v1/runner/claim`), everything else through the REST API
(reads of records under `/api/v1/records/...`, creating and moving executions, answers,
stacks, settings, deployments, queues, workers). Records travel as JSON with one member per dataclass field
(kitaru/_codec.py). Flows, the CLI and `KitaruClient` use this like any other
journal. The requests live by family: executions here, calls and what they write in
`_calls.py`, queues and schedules in `_queues.py`, stacks and deployments in
`_deployments.py`, the connection and its verbs in `_requests.py`.

The server shows lease owners masked (kitaru/server/_owners.py); a masked owner is good
as the `expected_owner` of a compare-and-swap, and a process's own owner token, which
it made itself, is what its writes present.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from kitaru._codec import from_wire, many, maybe, to_wire
from kitaru._lease import same_owner
from kitaru.journal._events import BATCH_MAX
from kitaru.journal._http_calls import CallRequests
from kitaru.journal._http_deployments import DeploymentRequests
from kitaru.journal._http_queues import QueueRequests
from kitaru.journal._http_requests import MAX_PAGE, _p, _sent_once
from kitaru.journal._records import ArtifactRecord, EventRecord, ExecutionRecord
from kitaru.journal._snapshot import ExecutionSnapshot

# How long the execution a `finish` answered with stands for a read of it.
FINISHED_FRESH_SECONDS = 5.0


class HttpJournal(CallRequests, QueueRequests, DeploymentRequests):
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

    def execution_snapshot(self, exec_id: str) -> ExecutionSnapshot | None:
        # Separate requests, the record first: the calls read after it may be newer
        # than its status (a running execution with its last call), never older (a
        # completed one missing calls).
        record = self.get_execution(exec_id)
        return None if record is None else ExecutionSnapshot.read(self, record)

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
        events: Sequence[EventRecord] = (),
    ) -> bool:
        # The entries first, through the feed's own route: the status after them.
        for at in range(0, len(events), BATCH_MAX):
            if not self.append_events(exec_id, events[at : at + BATCH_MAX], owner=owner):
                return False
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
