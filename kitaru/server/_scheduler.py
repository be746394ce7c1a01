"""The server's scheduler: a thread that fires due schedules (kitaru/_schedules.py).

Every replica runs one; the journal's compare-and-set on each schedule's next tick lets
exactly one of them start each tick. It imports no flow code: a flow schedule's tick is a
queued execution for a worker; a deployment's is invoked like `POST .../invoke`, on the
stack's orchestrator with the server's public URL (never on this host).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading

from kitaru import _schedules
from kitaru.journal import Journal

log = logging.getLogger("kitaru.server")


class Scheduler:
    def __init__(self, journal: Journal, interval: float, public_url: str | None = None) -> None:
        self.journal = journal
        self.interval = interval
        self.public_url = public_url
        self.name = f"server {socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kitaru-scheduler", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # Jittered passes: replicas that started together do not query in lockstep.
        while not self._stop.wait(self.interval * random.uniform(0.5, 1.5)):
            try:
                self.tick()
            except Exception:
                log.exception("firing schedules failed; retrying at the next interval")

    def tick(self) -> int:
        started = _schedules.fire_due(
            self.journal, by=self.name, server_url=self.public_url, refuse_local=True
        )
        for run in started:
            log.info("schedule %s started %s", run.schedule, run.exec_id)
        return len(started)
