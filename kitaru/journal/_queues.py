"""Queues and workers in the SQL journals (schema version 6; the claim's index, 10).

An execution waits for a worker when it is `queued` with no orchestrator run on a stack
that runs flows where they start (orchestrator `local`): submitted with `flow.submit`,
or continued by a server (an answer, a resume, a timed-out wait); or when it was put in
a queue explicitly (`kitaru deployments invoke --queue`), whatever its stack. Its queue
is the `queue` column, `default` when NULL. A deployed version's execution is taken
only by a worker whose code is that version's snapshot (`flow@version` in its flows).

`claim` is the one way a worker takes such an execution. In one transaction it checks
the queue's limits against the journal (running executions claimed by workers, claims in
the last minute) and moves the best candidate to `running` under the worker's lease, so
limits hold across every worker on every machine: PostgreSQL serializes claims of one
queue with an advisory lock and skips candidate rows another transaction holds; SQLite
serializes all writers (`BEGIN IMMEDIATE`), which is one machine's worth of workers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from kitaru.journal import _records
from kitaru.journal._records import ExecutionRecord

if TYPE_CHECKING:
    from kitaru.journal._fleet_records import QueueRecord, WorkerRecord

DEFAULT_QUEUE = "default"
QUEUE_COLS = "name, concurrency, rate_per_minute, created_at, updated_at"
WORKER_COLS = (
    "name, host, pid, queues, flows, concurrency, running, started_at, seen_at, stopped_at"
)
_PUT_WORKER = (
    f"INSERT INTO workers ({WORKER_COLS}) VALUES ({', '.join('?' * 10)}) "
    "ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in WORKER_COLS.split(", ")[1:])
)
# What a worker can take: queued for a runner, not for an orchestrator run: on a stack
# that runs flows where they start, or put in a queue (`deployments invoke --queue`);
# owned by nobody (a record written queued under an owner cannot be claimed, and must
# not stand first in line for ever).
_READY = (
    "status = 'queued' AND run_id IS NULL AND (orchestrator = 'local' OR queue IS NOT NULL) "
    "AND cancel_requested = 0 AND owner IS NULL"
)
# A worker names the flows it runs (`name`) and the deployed versions its code is the
# snapshot of (`name@version`); an invocation of a deployment needs the second.
_RUNNABLE = (
    "((deployment_version IS NULL AND flow IN ({marks})) OR (deployment_version IS NOT NULL "
    "AND flow || '@' || CAST(deployment_version AS TEXT) IN ({marks})))"
)
_IN_QUEUE = f"COALESCE(queue, '{DEFAULT_QUEUE}') = ?"


class QueueRows:
    """Mixed into `SqlJournal`, which supplies the connection hooks and these two
    dialect strings."""

    QUEUE_LOCK: ClassVar[str | None] = None  # a statement locking one queue's claims
    SKIP_LOCKED: ClassVar[str] = ""

    def _tx(self, *, immediate: bool = False) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _x(self, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        raise NotImplementedError

    def get_execution(self, exec_id: str) -> ExecutionRecord | None:
        raise NotImplementedError

    # -- claims --------------------------------------------------------------------------
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
        """Take the next execution of `flows` waiting in `queue` (highest priority, then
        longest waiting) under `owner`'s lease, unless the queue's limits say not now.
        `flows` holds flow names, and `name@version` for each deployed version the
        worker's code is the snapshot of."""
        if not flows:
            return None
        # Idempotent as written: a worker makes one owner token per claim, so an
        # execution already running under it is this claim's, made again because its
        # answer was lost (a cut connection, a server's reply that never came).
        mine = self._x(
            "SELECT exec_id FROM executions WHERE owner = ? AND worker = ? "
            f"AND status = 'running' AND {_IN_QUEUE}",
            (owner, worker, queue),
        ).fetchone()
        if mine is not None:
            return self.get_execution(mine[0])
        marks = ", ".join("?" for _ in flows)
        with self._tx(immediate=self.QUEUE_LOCK is None) as conn:
            if self.QUEUE_LOCK is not None:
                conn.execute(self._sql(self.QUEUE_LOCK), (queue,))
            limits = conn.execute(
                self._sql("SELECT concurrency, rate_per_minute FROM queues WHERE name = ?"),
                (queue,),
            ).fetchone()
            now = self._after_lock(now)
            lease_until = max(lease_until, now)
            if limits is not None and limits[0] is not None:
                running = conn.execute(
                    self._sql(
                        "SELECT COUNT(*) FROM executions WHERE status = 'running' "
                        f"AND worker IS NOT NULL AND lease_until > ? AND {_IN_QUEUE}"
                    ),
                    (now, queue),
                ).fetchone()[0]
                if running >= limits[0]:
                    return None
            if limits is not None and limits[1] is not None:
                started = conn.execute(
                    self._sql(
                        f"SELECT COUNT(*) FROM executions WHERE claimed_at > ? AND {_IN_QUEUE}"
                    ),
                    (now - 60.0, queue),
                ).fetchone()[0]
                if started >= limits[1]:
                    return None
            row = conn.execute(
                self._sql(
                    f"SELECT exec_id FROM executions WHERE {_READY} AND {_IN_QUEUE} "
                    f"AND {_RUNNABLE.format(marks=marks)} "
                    "ORDER BY COALESCE(priority, 0) DESC, updated_at, exec_id LIMIT 1"
                    + self.SKIP_LOCKED
                ),
                (queue, *flows, *flows),
            ).fetchone()
            if row is None:
                return None
            cur = conn.execute(
                self._sql(
                    "UPDATE executions SET owner = ?, status = 'running', runs = runs + 1, "
                    "heartbeat_at = ?, lease_until = ?, updated_at = ?, ended_at = NULL, "
                    f"error = NULL, worker = ?, claimed_at = ? WHERE exec_id = ? AND {_READY}"
                ),
                (owner, now, lease_until, now, worker, now, row[0]),
            )
            if cur.rowcount != 1:
                return None
        return self.get_execution(row[0])

    @staticmethod
    def _after_lock(now: float) -> float:
        """The claim's time, read again once the queue is locked: a claim that waited
        for the lock is stamped after the ends it waited for, so `claimed_at` and
        `ended_at` order as the claims and ends happened (a caller's clock far from
        this one, a test's, is kept as given)."""
        here = time.time()
        return max(now, here) if abs(here - now) < 60 else now

    def queue_counts(self, now: float) -> dict[str, dict[str, Any]]:
        """By queue: executions waiting (`depth`, `oldest` queued time) and running under
        a worker's live lease (`running`), and claims in the last minute (`started`)."""
        out: dict[str, dict[str, Any]] = {}

        def entry(name: str) -> dict[str, Any]:
            return out.setdefault(name, {"depth": 0, "running": 0, "started": 0, "oldest": None})

        for name, depth, oldest in self._x(
            f"SELECT COALESCE(queue, '{DEFAULT_QUEUE}'), COUNT(*), MIN(updated_at) "
            f"FROM executions WHERE {_READY} GROUP BY COALESCE(queue, '{DEFAULT_QUEUE}')"
        ).fetchall():
            entry(name).update(depth=depth, oldest=oldest)
        for name, running in self._x(
            f"SELECT COALESCE(queue, '{DEFAULT_QUEUE}'), COUNT(*) FROM executions "
            "WHERE status = 'running' AND worker IS NOT NULL AND lease_until > ? "
            f"GROUP BY COALESCE(queue, '{DEFAULT_QUEUE}')",
            (now,),
        ).fetchall():
            entry(name)["running"] = running
        for name, started in self._x(
            f"SELECT COALESCE(queue, '{DEFAULT_QUEUE}'), COUNT(*) FROM executions "
            f"WHERE claimed_at > ? GROUP BY COALESCE(queue, '{DEFAULT_QUEUE}')",
            (now - 60.0,),
        ).fetchall():
            entry(name)["started"] = started
        return out

    # -- queue limits --------------------------------------------------------------------
    def put_queue(self, queue: QueueRecord) -> None:
        """Create the queue or replace its limits (its creation time stays)."""
        q = queue
        with self._tx(immediate=True) as conn:
            found = conn.execute(
                self._sql("SELECT created_at FROM queues WHERE name = ?"), (q.name,)
            ).fetchone()
            if found is None:
                conn.execute(
                    self._sql(f"INSERT INTO queues ({QUEUE_COLS}) VALUES (?, ?, ?, ?, ?)"),
                    (q.name, q.concurrency, q.rate_per_minute, q.created_at, q.updated_at),
                )
            else:
                conn.execute(
                    self._sql(
                        "UPDATE queues SET concurrency = ?, rate_per_minute = ?, updated_at = ? "
                        "WHERE name = ?"
                    ),
                    (q.concurrency, q.rate_per_minute, q.updated_at, q.name),
                )

    def get_queue(self, name: str) -> QueueRecord | None:
        row = self._x(f"SELECT {QUEUE_COLS} FROM queues WHERE name = ?", (name,)).fetchone()
        return _records.QueueRecord(*row) if row else None

    def list_queues(self) -> list[QueueRecord]:
        rows = self._x(f"SELECT {QUEUE_COLS} FROM queues ORDER BY name").fetchall()
        return [_records.QueueRecord(*r) for r in rows]

    def delete_queue(self, name: str) -> bool:
        with self._tx() as conn:
            cur = conn.execute(self._sql("DELETE FROM queues WHERE name = ?"), (name,))
            return bool(cur.rowcount == 1)

    # -- workers -------------------------------------------------------------------------
    def put_worker(self, worker: WorkerRecord) -> None:
        """Record a worker starting (a name used before is replaced)."""
        w = worker
        params = (
            w.name,
            w.host,
            w.pid,
            json.dumps(w.queues),
            json.dumps(w.flows),
            w.concurrency,
            w.running,
            w.started_at,
            w.seen_at,
            w.stopped_at,
        )
        # One upsert: a DELETE then INSERT let two workers starting under one name at
        # the same moment both find no row, and the second insert fail on PostgreSQL.
        self._x(_PUT_WORKER, params)

    def worker_seen(self, name: str, *, running: int, now: float, stopped: bool = False) -> None:
        with self._tx() as conn:
            conn.execute(
                self._sql(
                    "UPDATE workers SET running = ?, seen_at = ?, stopped_at = ? WHERE name = ?"
                ),
                (running, now, now if stopped else None, name),
            )

    def list_workers(self) -> list[WorkerRecord]:
        rows = self._x(f"SELECT {WORKER_COLS} FROM workers ORDER BY started_at").fetchall()
        return [
            _records.WorkerRecord(r[0], r[1], r[2], json.loads(r[3]), json.loads(r[4]), *r[5:])
            for r in rows
        ]
