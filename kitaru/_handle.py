"""`ExecutionHandle`: what starting an execution returns, wherever it runs.

Below the ways to start one (`flow.run()` on a stack, `flow.submit()` to a queue, an
invoked deployment), which all return it.
"""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

from kitaru import _ids
from kitaru._errors import ExecutionFailedError, ExecutionWaitingError, NotFoundError
from kitaru.journal import ExecutionRecord, Journal, current_journal

R = TypeVar("R")


class ExecutionHandle(Generic[R]):
    """A started execution: its id, its status now, and its result once it has one."""

    def __init__(
        self,
        exec_id: str,
        *,
        hint: Any = None,
        journal: Journal | None = None,
        allow_pickle: bool = False,
    ) -> None:
        self.exec_id = exec_id
        self._hint = hint
        self._journal = journal
        # The flow's own permission: its pickled result loads back here, nowhere else.
        self._allow_pickle = allow_pickle
        # The status this handle has said on stderr (kitaru/_speak.py), so it says it once.
        self._told: str | None = None
        # True when the start's idempotency key found an earlier execution: this one,
        # which that start did not run again (kitaru/_idempotency.py).
        self.reused = False

    def _record(self) -> ExecutionRecord:
        journal = self._journal or current_journal()
        record = journal.get_execution(self.exec_id)
        if record is None:
            raise NotFoundError(_ids.not_found("kx", self.exec_id, journal.url))
        return record

    @property
    def status(self) -> str:
        """queued, running, waiting, completed, failed, crashed or cancelled."""
        from kitaru._lease import effective_status

        r = self._record()
        return effective_status(r.status, r.owner, r.lease_until)

    def wait(self, timeout: float | None = None, poll: float = 0.2) -> str:
        """Block until the execution is no longer queued or running; return its status.

        An execution that ended waiting, failed, crashed or cancelled is said once on
        stderr, with the command that comes next (`KITARU_QUIET`, kitaru/_speak.py)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.status
            if status not in ("running", "queued"):
                self.tell(status)
                return status
            if deadline is not None and time.monotonic() > deadline:
                return status
            time.sleep(poll)

    def tell(self, status: str, record: ExecutionRecord | None = None) -> None:
        """Say on stderr that the execution ended in `status`, unless this handle said so."""
        if status == self._told or status in ("completed", "running", "queued"):
            return
        self._told = status
        from kitaru import _speak

        _speak.ended(self._journal or current_journal(), record or self._record(), status)

    def result(self, timeout: float | None = None) -> R:
        """The flow's return value.

        Raises ExecutionWaitingError at once if the execution waits for input (it never
        blocks on a person), ExecutionFailedError if it failed, crashed or was cancelled.
        """
        status = self.wait(timeout)
        record = self._record()
        if status == "completed":
            if record.result_artifact is None:
                return None  # type: ignore[return-value]
            from kitaru._artifact_io import load_value

            journal = self._journal or current_journal()
            artifact = journal.get_artifact(record.result_artifact)
            assert artifact is not None
            value: R = load_value(
                artifact, record.artifact_store, hint=self._hint, allow_pickle=self._allow_pickle
            )
            return value
        if status == "waiting":
            journal = self._journal or current_journal()
            pending = [w for w in journal.waits(self.exec_id) if w.status == "pending"]
            name = pending[0].key if pending else "?"
            question = f" ({pending[0].question})" if pending and pending[0].question else ""
            raise ExecutionWaitingError(
                f"execution {self.exec_id} is waiting for input at wait {name!r}{question}; "
                f"answer it with: kitaru executions input {self.exec_id} {name} <json>"
            )
        if status in ("running", "queued"):
            raise ExecutionFailedError(
                f"execution {self.exec_id} is still running after {timeout} s"
            )
        if status == "crashed":
            raise ExecutionFailedError(
                f"execution {self.exec_id} crashed; resume it with: "
                f"kitaru executions resume {self.exec_id}"
            )
        raise ExecutionFailedError(
            f"execution {self.exec_id} {status}: {record.error or 'no error recorded'}"
        )

    def __repr__(self) -> str:
        return f"<ExecutionHandle {self.exec_id}>"
