"""Continuing executions whose waits timed out, and revoking the tokens of ended runs.

A wait past its timeout takes its default (or fails the execution) only when the flow
runs again, and a waiting execution holds no process: the server is what notices. It
looks at pending waits every few seconds and continues each execution whose wait has
expired where it runs (kitaru/server/_actions.py: resubmitted to its orchestrator, or
queued ready for a runner on the local stack); the move to `queued` is a
compare-and-swap, so server replicas that sweep the same journal continue it once.

The same pass fails executions queued for over a minute whose run ended without taking
them (a container that could not start, or could not reach the journal): the server
re-submits executions itself (a wait answered through it), and no process holds a
handle on those to notice.

When tracing is on (kitaru/_tracing.py), the same pass sends the span of each run that
crashed and that nothing resumed yet, so the execution's trace shows it without a resume.

The same pass also revokes the `run-<exec_id>` tokens the server gave containers it started
(kitaru/stacks/_reporting.py) once their execution has completed, failed or been
cancelled.
"""

from __future__ import annotations

import logging
import threading
import time

from kitaru import _control, _tracing
from kitaru._errors import KitaruError
from kitaru.journal import Journal
from kitaru.server import _actions
from kitaru.server._tokens import revoke_finished_runs

log = logging.getLogger("kitaru.server")

# After a resume attempt, leave the execution alone this long: the resumed process
# needs time to take the lease, and a resume that keeps failing must not spin.
RETRY_AFTER = 60.0

# A queued execution is checked with its orchestrator (a platform API call) once it has
# been queued this long; a healthy run takes the lease well before.
QUEUED_CHECK_AFTER = 60.0


class Sweeper:
    def __init__(self, journal: Journal, interval: float, public_url: str | None = None) -> None:
        self.journal = journal
        self.interval = interval
        self.public_url = public_url
        self._stop = threading.Event()
        self._tried: dict[str, float] = {}
        self._checked: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, name="kitaru-sweeper", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception:
                log.exception("sweeping failed; retrying at the next interval")

    def sweep(self, now: float | None = None) -> list[str]:
        """Continue every waiting execution with an expired wait, return their ids; fail
        those queued whose run ended; revoke the run tokens of executions that have
        ended. `now` is the time the sweep takes as current (tests pass a later one)."""
        now = time.time() if now is None else now
        resumed = self.resume_timed_out(now)
        self.fail_never_started(now)
        self.restart_lost(now)
        traced = _tracing.send_crashed_runs(self.journal)
        if traced:
            log.info("sent the spans of %d crashed run(s)", len(traced))
        revoked = revoke_finished_runs(self.journal)
        if revoked:
            log.info("revoked %d run token(s) of ended executions", len(revoked))
        return resumed

    def resume_timed_out(self, now: float) -> list[str]:
        resumed = []
        for exec_id in _control.timed_out(self.journal, now=now):
            if now - self._tried.get(exec_id, 0.0) < RETRY_AFTER:
                continue
            self._tried[exec_id] = now
            try:
                _actions.sweep_timed_out(self.journal, exec_id, server_url=self.public_url)
            except KitaruError as exc:
                log.warning("could not continue %s after its wait timed out: %s", exec_id, exc)
                continue
            log.info("continued %s: a wait timed out", exec_id)
            resumed.append(exec_id)
        return resumed

    def restart_lost(self, now: float) -> list[str]:
        """Submit again the running executions whose run died, where their stack allows
        (kitaru/stacks/_restarts.py); their ids."""
        from kitaru.stacks._restarts import lost, restart_if_lost

        restarted = []
        for record in self.journal.list_executions(status="running", limit=1000):
            if not lost(record):
                continue
            after = restart_if_lost(self.journal, record, now=now, server_url=self.public_url)
            if after.status == "queued":
                restarted.append(record.exec_id)
        return restarted

    def fail_never_started(self, now: float) -> list[str]:
        """Fail the executions queued over QUEUED_CHECK_AFTER whose run ended; their ids."""
        from kitaru.stacks._submit import reconcile

        queued = self.journal.list_executions(status="queued", limit=1000)
        # Forget executions that left the queue, so the dict stays as small as the queue.
        self._checked = {
            r.exec_id: self._checked[r.exec_id] for r in queued if r.exec_id in self._checked
        }
        failed = []
        for record in queued:
            if record.run_id is None or now - record.updated_at <= QUEUED_CHECK_AFTER:
                continue
            if now - self._checked.get(record.exec_id, 0.0) < RETRY_AFTER:
                continue
            self._checked[record.exec_id] = now
            after = reconcile(self.journal, record, server_url=self.public_url)
            if after.status == "failed":
                log.warning("failed %s: %s", record.exec_id, after.error)
                failed.append(record.exec_id)
        return failed
