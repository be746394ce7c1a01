"""Idempotent starts: one execution per flow and idempotency key, whatever the race.

Every way of starting an execution takes a key: `flow.run(..., idempotency_key=K)`,
`flow.submit(...)`, `flow.invoke(...)`, `kitaru deployments invoke --idempotency-key K`
and the server's invoke route (its `idempotency_key` member or `Idempotency-Key`
header). A start with a key goes through these steps, in this order:

1. `check_key`: 1-200 printable characters, or bad input saying so.
2. `earlier`: the key is looked up. An execution of the same flow that holds it is the
   answer, as it is now: nothing is recorded, built or run. A key held by another flow
   is refused with a usage error naming that flow (a key names one start of one flow;
   reusing it elsewhere is taken for a mistake, not for a new start).
3. `store`: the start builds its execution as it would without a key, with the key in
   `idempotency_key`, and the journal inserts it unless the unique index on (key, flow)
   (schema 11) holds the key already. Then nothing is written and the holder is
   returned: of fifty starts racing past step 2 with one key, one stores its execution
   and runs it, the others get that one back and run nothing. Input bytes a loser
   wrote to the artifact store before (values above 16 KiB) belong to no record.
4. `said`: a start that got an earlier execution says so in one line on stderr
   (kitaru/_speak.py), with what to do when it failed: start again with a new key, or
   resume it.

The key is the start's identity, not its arguments: a second start with the same key
and other arguments gets the first execution (as with a workflow id in DBOS or
Temporal). The lookup in step 2 spans flows, the index only one flow: two flows racing
with one key may both start, each holding it for itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from kitaru import _speak
from kitaru._errors import InvalidInputError, KitaruUsageError, NotFoundError
from kitaru.journal import ArtifactRecord, ExecutionRecord, Journal

MAX_KEY = 200


def check_key(key: str | None) -> str | None:
    """The key as given, or a usage error that says what a key may be."""
    if key is None:
        return None
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise InvalidInputError(
            f"idempotency key {key!r} is not usable; give 1-{MAX_KEY} printable characters "
            "that name this start (a request id, a webhook delivery id, an order number)"
        )
    return key


def earlier(journal: Journal, flow: str, key: str | None) -> ExecutionRecord | None:
    """The execution of `flow` that `key` started, if any; a key another flow holds is
    a usage error."""
    if key is None:
        return None
    held = journal.list_executions(idempotency_key=key, limit=10)
    for record in held:
        if record.flow == flow:
            return record
    if held:
        other = held[0]
        raise KitaruUsageError(
            f"idempotency key {key!r} already started execution {other.exec_id} of flow "
            f"{other.flow!r}, not {flow!r}; a key names one start of one flow: give this "
            f"start a key of its own (for example {f'{flow}:{key}'[:MAX_KEY]!r})"
        )
    return None


def store(
    journal: Journal, record: ExecutionRecord, inputs: Sequence[ArtifactRecord]
) -> ExecutionRecord | None:
    """Store a new execution: None when `record` was stored, else the execution that
    holds its idempotency key (and nothing was written)."""
    stored = journal.create_execution(record, inputs)
    if stored == record.exec_id:
        return None
    holder = journal.get_execution(stored)
    if holder is None:  # the holder was deleted between the insert and this read
        raise NotFoundError(
            f"idempotency key {record.idempotency_key!r} of flow {record.flow!r} is held by "
            f"execution {stored}, which is gone; start again"
        )
    return holder


def said(record: ExecutionRecord, status: str) -> None:
    """Say that a start with a key got the execution the key started before."""
    trouble = status in ("failed", "crashed", "cancelled")
    text = (
        f"idempotency key {record.idempotency_key!r} started execution {record.exec_id} of "
        f"flow {record.flow!r} before; it is {status} and was not started again"
    )
    if status == "failed":
        text += (
            f": to run it again, start it with a new key (or continue this one: "
            f"kitaru executions resume {record.exec_id})"
        )
    elif status == "cancelled":
        text += ": to run it again, start it with a new key"
    elif status == "crashed":
        text += f": continue it with: kitaru executions resume {record.exec_id}"
    _speak.say(text, trouble=trouble)
