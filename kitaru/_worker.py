"""`kitaru worker`: runs executions that wait in queues, where the flows' code lives.

A worker imports the flows it is given, then loops: it claims ready executions of
those flows from its queues (kitaru/journal/_queues.py: one atomic claim each, which
applies the queue's limits across all workers) while it runs fewer than its own
`concurrency`, and runs each in a process of its own (kitaru/_worker_child.py says
why). Between claims it:

- gives back executions whose child died without ending them (a crash: they resume
  from their last checkpoint, up to `MAX_CRASHES` times, then fail);
- takes back executions of its queues whose worker died (on this host: its children
  died with it, so their pids are gone; elsewhere: their lease expired);
- queues waiting executions of its flows whose wait timed out (nothing else notices
  without a server);
- fires due schedules (kitaru/_schedules.py; any number of workers and servers start
  each tick once);
- reports itself in the journal (`kitaru queues show`).

On SIGTERM or Ctrl-C it stops claiming, asks every child to stop at its next
checkpoint boundary and hand its execution back to the queue, waits `grace` seconds,
kills what is left and queues their executions itself. A second Ctrl-C kills at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kitaru import _control, _lease, _queue, _ready, _schedules, _worker_child
from kitaru._errors import LeaseError
from kitaru.journal import Journal, WorkerRecord
from kitaru.journal._queues import DEFAULT_QUEUE

# A flow whose process keeps dying (the interpreter crashes, the OOM killer) is failed
# after this many deaths instead of being run again forever.
MAX_CRASHES = 3
RECOVER_EVERY = 1.0
REPORT_EVERY = 5.0
VERSIONS_EVERY = 30.0  # how often to look for newly deployed versions of our code
SCHEDULES_EVERY = 1.0


@dataclass
class Running:
    exec_id: str
    owner: str
    pid: int
    since: float = field(default_factory=time.monotonic)


class Worker:
    def __init__(
        self,
        journal: Journal,
        flows: dict[str, Any],
        *,
        queues: Sequence[str] = (DEFAULT_QUEUE,),
        concurrency: int = 8,
        grace: float = 30.0,
        poll: float = 0.1,
        name: str | None = None,
        until_empty: bool = False,
        say: Callable[[str, str, dict[str, Any]], None],
    ) -> None:
        self.journal = journal
        self.flows = flows
        self.queues = list(queues)
        self.concurrency = concurrency
        self.grace = grace
        self.poll = poll
        self.name = name or f"{_lease._HOST}:{os.getpid()}"
        self.until_empty = until_empty
        self.say = say
        self.running: dict[int, Running] = {}
        self.spare: tuple[int, int] | None = None
        self.stopping: float | None = None
        self.kill_now = False
        self.crashes: dict[str, int] = {}
        self._next_recover = 0.0
        self._next_report = 0.0
        self._next_versions = 0.0
        self._next_schedules = 0.0
        self.runnable: list[str] = sorted(flows)  # what claims ask for (see _queues.claim)
        self._hashes: dict[tuple[str, str], str | None] = {}  # see _queue.deployed_versions

    # -- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        # `kitaru executions cancel` signals an execution's owner: its child, never this
        # process; a stray one must not kill the worker.
        previous[_lease.CANCEL_SIGNAL] = signal.signal(_lease.CANCEL_SIGNAL, signal.SIG_IGN)
        self._find_versions()  # hash the projects now, as close to their import as can be
        now = time.time()
        self.journal.put_worker(
            WorkerRecord(
                name=self.name,
                host=_lease._HOST,
                pid=os.getpid(),
                queues=self.queues,
                flows=sorted(self.flows),
                concurrency=self.concurrency,
                running=0,
                started_at=now,
                seen_at=now,
            )
        )
        self.say(
            "",
            "started",
            {
                "worker": self.name,
                "queues": self.queues,
                "flows": sorted(self.flows),
                "concurrency": self.concurrency,
            },
        )
        try:
            while not self._done():
                claimed = False
                self._reap()
                if self.stopping is None:
                    self._housekeeping()
                    claimed = self._fill()
                    idle = self.until_empty and not claimed and not self.running
                    if idle and not self._anything_queued():
                        break
                else:
                    self._drain()
                if not self.running or self.stopping is not None or not claimed:
                    time.sleep(self.poll)
        finally:
            self._close_spare()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            with contextlib.suppress(Exception):
                self.journal.worker_seen(self.name, running=0, now=time.time(), stopped=True)
        self.say("", "stopped", {"worker": self.name})
        return 0

    def _done(self) -> bool:
        return self.stopping is not None and not self.running

    def _stopped(self) -> bool:
        """Whether SIGTERM or Ctrl-C came (a signal handler sets it at any moment)."""
        return self.stopping is not None

    def _on_stop(self, _signum: int, _frame: Any) -> None:
        if self.stopping is None:
            self.stopping = time.monotonic()
            for child in self.running.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        else:
            self.kill_now = True

    # -- claiming ------------------------------------------------------------------------
    def _fill(self) -> bool:
        """Claim while there is room; whether anything was claimed."""
        claimed = False
        names = self.runnable
        for queue in self.queues:
            while len(self.running) < self.concurrency and self.stopping is None:
                pid, pipe = self._spare()
                owner = _worker_child.owner_for(pid)
                now = time.time()
                record = self.journal.claim(
                    queue=queue,
                    flows=names,
                    owner=owner,
                    worker=self.name,
                    now=now,
                    lease_until=now + _lease.LEASE_SECONDS,
                )
                if record is None:
                    break
                if self._stopped():
                    # Stopped while the claim was on its way: hand it back unstarted.
                    self._requeue(record.exec_id, owner, "its worker stopped before it started")
                    break
                self.spare = None
                _worker_child.assign(pipe, record.exec_id, owner)
                self.running[pid] = Running(record.exec_id, owner, pid)
                claimed = True
                self.say(
                    record.exec_id,
                    "claimed",
                    {"flow": record.flow, "queue": queue, "run": record.runs, "pid": pid},
                )
        return claimed

    def _spare(self) -> tuple[int, int]:
        if self.spare is None:
            self.spare = _worker_child.start(self.flows, self.say)
        return self.spare

    def _close_spare(self) -> None:
        if self.spare is not None:
            pid, pipe = self.spare
            os.close(pipe)  # the child reads end-of-file and exits
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self.spare = None

    def _anything_queued(self) -> bool:
        counts = self.journal.queue_counts(time.time())
        return any(counts.get(q, {}).get("depth", 0) for q in self.queues)

    # -- children ending -----------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.running.pop(pid, None)
            if child is None:
                if self.spare is not None and self.spare[0] == pid:
                    os.close(self.spare[1])
                    self.spare = None
                continue
            how = (
                f"killed by signal {os.WTERMSIG(status)}"
                if os.WIFSIGNALED(status)
                else f"exit code {os.WEXITSTATUS(status)}"
            )
            # Whatever its exit code (a flow may call os._exit(0)), a child that leaves
            # its execution running under its lease died holding it.
            self._crashed(child, how)

    def _crashed(self, child: Running, how: str) -> None:
        """The child died holding its execution: queue it again, or fail it."""
        record = self.journal.get_execution(child.exec_id)
        if (
            record is None
            or record.status != "running"
            or not _lease.same_owner(record.owner, child.owner)
        ):
            return  # it ended (or was taken over) before the process died
        crashes = self.crashes.get(child.exec_id, 0) + 1
        self.crashes[child.exec_id] = crashes
        if crashes >= MAX_CRASHES and self.stopping is None:
            error = (
                f"its worker process died {crashes} times (last: {how}); fix the flow, then "
                f"`kitaru executions resume {child.exec_id}`"
            )
            self.journal.finish(
                child.exec_id, owner=child.owner, status="failed", now=time.time(), error=error
            )
            self.say(child.exec_id, "failed", {"error": error})
            return
        self._requeue(record.exec_id, child.owner, f"its worker process died ({how})")

    def _requeue(self, exec_id: str, owner: str, reason: str) -> bool:
        moved = self.journal.transition(
            exec_id, to="queued", from_statuses=("running",), expected_owner=owner, now=time.time()
        )
        if moved:
            self.journal.set_metadata(
                exec_id, {_ready.READY: {"reason": reason, "since": time.time()}}
            )
            self.say(exec_id, "requeued", {"reason": reason})
        return moved

    # -- stopping ------------------------------------------------------------------------
    def _drain(self) -> None:
        self._close_spare()
        assert self.stopping is not None
        if not self.kill_now and time.monotonic() - self.stopping < self.grace:
            return
        for child in list(self.running.values()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGKILL)
        for pid, child in list(self.running.items()):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            del self.running[pid]
            self._requeue(child.exec_id, child.owner, "its worker stopped before it ended")

    # -- housekeeping --------------------------------------------------------------------
    def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_versions:
            self._find_versions()
        if now >= self._next_recover:
            self._next_recover = now + RECOVER_EVERY
            self._recover_orphans()
            self._queue_timed_out()
        if now >= self._next_schedules:
            self._next_schedules = now + SCHEDULES_EVERY
            self._fire_schedules()
        if now >= self._next_report:
            self._next_report = now + REPORT_EVERY
            self.journal.worker_seen(self.name, running=len(self.running), now=time.time())

    def _find_versions(self) -> None:
        self._next_versions = time.monotonic() + VERSIONS_EVERY
        deployed = _queue.deployed_versions(self.journal, self.flows, self._hashes)
        if set(deployed) - set(self.runnable):
            self.say("", "deployments", {"runs": deployed})
        self.runnable = sorted(self.flows) + deployed

    def _recover_orphans(self) -> None:
        """Queue again the executions of our queues whose worker's child is gone."""
        now = time.time()
        for record in self.journal.list_executions(status="running", limit=1000):
            if (
                record.worker is None
                or record.owner is None
                or any(_lease.same_owner(record.owner, c.owner) for c in self.running.values())
                or (record.queue or DEFAULT_QUEUE) not in self.queues
                or record.flow not in self.flows
                or _lease.owner_alive(record.owner, record.lease_until, now)
            ):
                continue
            try:
                self._requeue(record.exec_id, record.owner, f"its worker ({record.worker}) died")
            except LeaseError:
                # A server judged its lease live by its own clock (ours may run ahead,
                # or the owner beat since we read it): not an orphan after all.
                continue

    def _fire_schedules(self) -> None:
        try:
            started = _schedules.fire_due(self.journal, by=f"worker {self.name}")
        except Exception as exc:  # a journal hiccup: the next pass tries again
            self.say("", "schedules", {"error": str(exc)})
            return
        for run in started:
            self.say(run.exec_id or "", "scheduled", {"schedule": run.schedule})

    def _queue_timed_out(self) -> None:
        for exec_id in _control.timed_out(self.journal):
            record = self.journal.get_execution(exec_id)
            if (
                record is None
                or record.flow not in self.flows
                or not _ready.for_workers(record)
                or (record.queue or DEFAULT_QUEUE) not in self.queues
            ):
                continue
            if _ready.mark_ready(self.journal, record, "a wait timed out"):
                self.say(exec_id, "requeued", {"reason": "a wait timed out"})
