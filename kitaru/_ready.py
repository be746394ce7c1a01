"""Executions ready to continue: queued for a runner where their code lives.

A server runs no flow code. When it continues an execution whose stack runs flows in
the process that starts them (the `local` orchestrator), after an answer, a resume, a
replay or a timed-out wait, it moves the execution to `queued` (a compare-and-swap on
its status and owner, as container stacks are queued) and records why under the
`ready` metadata key. Such an execution has no orchestrator run (`run_id` is None), so
nothing fails it for not starting: it waits for a runner.

A runner claims it atomically: a worker (`kitaru worker`) with the journal's `claim`,
which applies its queue's limits (the `queue` column, `default` when unset), a
developer's `kitaru executions resume` with `take_lease(statuses=("queued",),
expected_owner=None)`; both are compare-and-swaps on the status and owner, so two
runners never both run it. The claim clears nothing but
the status; the `ready` note stays as history and `is_ready` no longer holds once the
execution is running.
"""

from __future__ import annotations

import re
import time
from typing import Any

from kitaru._errors import InvalidInputError
from kitaru.journal import ExecutionRecord, Journal

READY = "ready"


def command(exec_id: str) -> str:
    return f"kitaru executions resume {exec_id}"


def for_workers(record: ExecutionRecord) -> bool:
    """Whether a runner where the code lives continues it, rather than an orchestrator:
    it has no orchestrator run and its stack runs flows where they start, or it was put
    in a queue (`flow.submit`, `kitaru deployments invoke --queue`)."""
    return record.run_id is None and (record.orchestrator == "local" or record.queue is not None)


def is_ready(record: ExecutionRecord) -> bool:
    """Queued for a runner rather than for an orchestrator run."""
    return record.status == "queued" and record.run_id is None and READY in record.metadata


def note(record: ExecutionRecord) -> dict[str, Any] | None:
    """What `executions get`, the API and the UI show for a ready execution."""
    if not is_ready(record):
        return None
    found = record.metadata.get(READY)
    reason = found.get("reason") if isinstance(found, dict) else None
    queue = record.queue or "default"
    return {
        "reason": reason if isinstance(reason, str) else "ready to continue",
        "queue": queue,
        "command": command(record.exec_id),
        "where": f"a worker taking queue {queue!r} (`kitaru worker --flows ... --queue "
        f"{queue}`), or `{command(record.exec_id)}` where the flow's code lives",
    }


def mark_ready(journal: Journal, record: ExecutionRecord, reason: str) -> bool:
    """Queue `record` for a runner, from the status and owner it was read with; False if
    it changed meanwhile (another process resumed or cancelled it)."""
    moved = journal.transition(
        record.exec_id,
        to="queued",
        from_statuses=(record.status,),
        expected_owner=record.owner,
        now=time.time(),
    )
    if moved:
        journal.set_metadata(record.exec_id, {READY: {"reason": reason, "since": time.time()}})
    return moved


# -- queues: names, limits and priorities as `flow.submit`, invocations and schedules
# check them; the note a queued execution carries -----------------------------------
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"queue name {name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit (for example: default, approvals, gpu-batch)"
        )
    return name


def check_limit(value: int | None, what: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not 1 <= value <= 1_000_000):
        raise InvalidInputError(f"{what} must be a whole number from 1 to 1000000, not {value}")
    return value


def check_priority(priority: int) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1_000_000:
        raise InvalidInputError(
            f"priority must be a whole number within ±1000000, not {priority!r}"
        )
    return priority


def ready_note(queue: str, now: float) -> dict[str, Any]:
    return {READY: {"reason": f"submitted to queue {queue!r}", "since": now}}
