"""Resuming executions whose waits timed out.

A wait past its timeout takes its default (or fails the execution) only when the flow
runs again, and a waiting execution holds no process: the server is what notices. It
looks at pending waits every few seconds and resumes each execution whose wait has
expired, where it runs; the resume takes the lease, so server replicas that sweep
the same journal resume it once.
"""

from __future__ import annotations

import logging
import threading
import time

from kitaru import _control
from kitaru._errors import KitaruError
from kitaru.journal import Journal

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
                log.exception("sweeping timed-out waits failed; retrying")

    def sweep(self) -> list[str]:
        """Resume every waiting execution with an expired wait; return their ids."""
        now = time.time()
        resumed = []
        for wait in self.journal.pending_waits():
            if wait.timeout_at is None or wait.timeout_at > now:
                continue
            if now - self._tried.get(wait.exec_id, 0.0) < RETRY_AFTER:
                continue
            self._tried[wait.exec_id] = now
            record = self.journal.get_execution(wait.exec_id)
            if record is None or _control.status_of(record) != "waiting":
                continue
            try:
                _control.resume(wait.exec_id, detach=True, journal=self.journal)
            except KitaruError as exc:
                log.warning("could not resume %s after its wait timed out: %s", wait.exec_id, exc)
                continue
            log.info("resumed %s: wait %r timed out", wait.exec_id, wait.key)
            resumed.append(wait.exec_id)
        return resumed
