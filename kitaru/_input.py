"""Answering a wait from outside the flow (the CLI and the client, where the code is)."""

from __future__ import annotations

import json
import time
from typing import Any

from kitaru import _loader, _serialize
from kitaru._artifact_io import build_artifact
from kitaru._errors import InvalidInputError, KitaruUsageError, NotFoundError
from kitaru._resume import _back_to_queue, get_execution, resume, status_of
from kitaru._wait import validate
from kitaru.artifacts import open_store
from kitaru.journal import ExecutionRecord, Journal, WaitRecord, current_journal


def find_wait(journal: Journal, exec_id: str, name: str) -> WaitRecord:
    waits = journal.waits(exec_id)
    exact = [w for w in waits if w.key == name]
    if not exact:
        pending = [w for w in waits if w.name == name and w.status == "pending"]
        if len(pending) > 1:
            # Parallel branches each wait under this name: say which one.
            keys = ", ".join(w.key for w in pending)
            raise InvalidInputError(
                f"execution {exec_id} has {len(pending)} pending waits named {name!r} "
                f"({keys}); give the wait's key, e.g. {pending[0].key}"
            )
        exact = pending or [w for w in waits if w.name == name]
    if not exact:
        known = ", ".join(w.key for w in waits) or "none"
        raise NotFoundError(f"execution {exec_id} has no wait named {name!r}; its waits: {known}")
    return exact[-1]


def parse_json(raw: str, what: str, *, schema: dict[str, Any] | None = None) -> Any:
    """`raw` as JSON; when it is not, the hint fits `schema` (a wait's) when given."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        from kitaru._wait import answer_hint

        hint = ""
        if schema is not None:
            hint = f" ({answer_hint(schema)})"
        elif raw and raw[0] not in '[{"-0123456789tfn':
            hint = " (strings need JSON quotes: '\"text\"')"
        raise InvalidInputError(
            f"{what} is not valid JSON: {exc.msg} at position {exc.pos}{hint}"
        ) from None


def give_input(
    exec_id: str,
    name: str,
    value: Any,
    *,
    resume_after: bool = True,
    detach: bool = False,
    journal: Journal | None = None,
) -> ExecutionRecord:
    """Answer a pending wait with a JSON value, then resume the execution (the CLI and
    the client, where the flow's code is; the server answers in kitaru/server/_actions.py)."""
    journal = journal or current_journal()
    record = get_execution(journal, exec_id)
    wait = find_wait(journal, exec_id, name)
    if wait.metadata.get("sleep"):
        raise KitaruUsageError(
            f"{wait.key!r} of execution {exec_id} is a kitaru.sleep(), not a wait: it takes no "
            "input and ends by itself at its wake time"
        )
    if wait.status != "pending":
        raise KitaruUsageError(
            f"wait {wait.key!r} of execution {exec_id} is already answered; nothing was changed"
        )
    status = status_of(record)
    if status in ("completed", "cancelled", "failed"):
        raise KitaruUsageError(
            f"execution {exec_id} is {status}; its wait {wait.key!r} can no longer be answered"
        )
    model = None
    if wait.schema.get("type") == "model":
        model = _schema_model(journal, record, wait.schema["type_ref"])
    checked = validate(wait.schema, value, model=model)
    encoded = _serialize.encode(checked, what=f"input for wait {wait.key!r}")
    artifact = build_artifact(
        exec_id=exec_id,
        store=open_store(record.artifact_store or ""),
        name=wait.key,
        producer="wait",
        producer_key=wait.key,
        encoded=encoded,
    )
    if not journal.answer_wait(exec_id, wait.key, artifact, now=time.time()):
        raise KitaruUsageError(
            f"wait {wait.key!r} of execution {exec_id} was answered by someone else just now"
        )
    record = get_execution(journal, exec_id)
    if resume_after and status_of(record) == "waiting":
        if _back_to_queue(journal, record, f"wait {wait.key!r} answered"):
            return get_execution(journal, exec_id)
        return resume(exec_id, detach=detach, journal=journal)
    return record


def _schema_model(journal: Journal, record: ExecutionRecord, ref: str) -> Any:
    """Import the wait's model class the way a resume would; None if it cannot be."""
    try:
        _loader.load_flow(record, journal=journal)
        return _serialize.resolve_type(ref)
    except Exception:
        return None
