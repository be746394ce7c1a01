"""Resuming executions whose waits timed out, and revoking the tokens of ended runs.

A wait past its timeout takes its default (or fails the execution) only when the flow
runs again, and a waiting execution holds no process: the server is what notices. It
looks at pending waits every few seconds and resumes each execution whose wait has
expired, where it runs; the resume takes the lease, so server replicas that sweep
the same journal resume it once.

The same pass revokes the `run-<exec_id>` tokens the server gave containers it started
(kitaru/stacks/_reporting.py) once their execution has completed, failed or been
cancelled.
"""

from __future__ import annotations

import logging
import threading
import time

from kitaru import _control
from kitaru._errors import KitaruError
from kitaru.journal import Journal
from kitaru.server._tokens import revoke_finished_runs

log = logging.getLogger("kitaru.server")

# After a resume attempt, leave the execution alone this long: the resumed process
# needs time to take the lease, and a resume that keeps failing must not spin.
RETRY_AFTER = 60.0


class Sweeper:
    def __init__(self, journal: Journal, interval: float) -> None:
        self.journal = journal
        self.interval = interval
        self._stop = threading.Event()
        self._tried: dict[str, float] = {}
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
                log.exception("sweeping (timed-out waits, ended runs' tokens) failed; retrying")

    def sweep(self) -> list[str]:
        """Resume every waiting execution with an expired wait, return their ids; revoke
        the run tokens of executions that have ended."""
        resumed = self.resume_timed_out()
        revoked = revoke_finished_runs(self.journal)
        if revoked:
            log.info("revoked %d run token(s) of ended executions", len(revoked))
        return resumed

    def resume_timed_out(self) -> list[str]:
        now = time.time()
        resumed = []
        for exec_id in _control.timed_out(self.journal, now=now):
            if now - self._tried.get(exec_id, 0.0) < RETRY_AFTER:
                continue
            self._tried[exec_id] = now
            try:
                _control.resume(exec_id, detach=True, journal=self.journal)
            except KitaruError as exc:
                log.warning("could not resume %s after its wait timed out: %s", exec_id, exc)
                continue
            log.info("resumed %s: a wait timed out", exec_id)
            resumed.append(exec_id)
        return resumed
