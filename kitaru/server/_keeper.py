"""The server's retention (`kitaru server start --retention 30d`): a thread that deletes
executions which ended longer ago than that, and their bytes, every interval.

Every replica may run one: a collection is idempotent (each batch locks its executions
and checks them again; an execution another replica deleted is skipped; deleting an
object twice is no error), so two replicas at once only repeat work.
"""

from __future__ import annotations

import logging
import random
import threading

from kitaru import _retention
from kitaru.journal import Journal

log = logging.getLogger("kitaru.server")


class Keeper:
    def __init__(self, journal: Journal, older_than: float | None, interval: float) -> None:
        self.journal = journal
        self.older_than = older_than
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kitaru-retention", daemon=True)

    def start(self) -> None:
        if self.older_than is not None and self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        # Jittered passes: replicas that started together do not collect in lockstep.
        while not self._stop.wait(self.interval * random.uniform(0.5, 1.0)):
            try:
                self.collect()
            except Exception:
                log.exception("retention failed; retrying at the next interval")

    def collect(self) -> _retention.Report:
        assert self.older_than is not None
        report = _retention.collect(self.journal, older_than=self.older_than)
        if report.deleted or report.objects_deleted or report.objects_left:
            log.info(
                "retention: deleted %d executions and %d stored objects%s",
                len(report.deleted),
                report.objects_deleted,
                f"; left {report.objects_left}" if report.objects_left else "",
            )
        return report
