"""One execution as it was at one moment: what `kitaru executions get` shows.

The execution's record, its calls, waits and (when it failed) logs, and its result's
artifact record are read in one read transaction (SQLite: BEGIN ... COMMIT, whose first
read fixes the snapshot; PostgreSQL: REPEATABLE READ, READ ONLY). A flow committing calls
meanwhile never shows a status its call list contradicts: a `completed` execution with
calls still to come, a call of a run the execution has not started.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from kitaru.journal._records import (
    ArtifactRecord,
    CallRecord,
    ExecutionRecord,
    LogRecord,
    WaitRecord,
)


@dataclass(slots=True)
class ExecutionSnapshot:
    execution: ExecutionRecord
    calls: list[CallRecord]
    waits: list[WaitRecord]
    logs: list[LogRecord]  # read only for a failed execution (its traceback is there)
    result: ArtifactRecord | None  # the flow's return value's record, if any

    @classmethod
    def read(cls, journal: Any, record: ExecutionRecord) -> ExecutionSnapshot:
        """What `executions get` shows of `record`, read from `journal` (in the caller's
        read transaction, where it has one)."""
        exec_id = record.exec_id
        return cls(
            execution=record,
            calls=journal.calls(exec_id),
            waits=journal.waits(exec_id),
            logs=journal.logs(exec_id) if record.status == "failed" else [],
            result=journal.get_artifact(record.result_artifact) if record.result_artifact else None,
        )


class SnapshotReads:
    """Mixed into `SqlJournal`, which supplies the reads and the read transaction."""

    def _read_tx(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def execution_snapshot(self, exec_id: str) -> ExecutionSnapshot | None:
        """The execution and what `executions get` shows of it, read at one moment."""
        j: Any = self
        with self._read_tx():
            record = j.get_execution(exec_id)
            return None if record is None else ExecutionSnapshot.read(j, record)
