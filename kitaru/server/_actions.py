"""Acting on executions from the server, which runs no flow code and imports nothing a
record names.

Continuing an execution (after an answer, a resume, a replay, a timed-out wait) goes
to where the execution runs:

- on a stack whose orchestrator runs it elsewhere (a container, a cloud job), the
  server submits it again through that orchestrator, in the image the execution or
  its deployment recorded, with its own public URL (`--public-url`) for the container
  to report to;
- on a stack that runs flows in the process that starts them (`local`), the server
  leaves it `queued` and ready to continue (kitaru/_ready.py): `kitaru executions
  resume <id>` run where the code lives continues it (a worker, later, claims it the
  same way).

Wait answers are JSON checked against the wait's stored schema (a model's JSON schema
included) without importing the model class, and stored as JSON.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from kitaru import _config, _control, _ready, _serialize
from kitaru._artifact_io import INLINE_MAX, build_artifact
from kitaru._errors import InvalidInputError, KitaruUsageError, LeaseError
from kitaru._wait import validate
from kitaru.artifacts import open_store
from kitaru.journal import ExecutionRecord, Journal, WaitRecord
from kitaru.journal._records import parse_call_output_id


def check_answer(wait: WaitRecord, value: Any) -> None:
    """Raise InvalidInputError with the reason unless `value` fits the wait's schema."""
    schema = wait.schema
    if schema.get("type") == "model" and "json_schema" in schema:
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema["json_schema"])
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            raise InvalidInputError(
                f"input for wait {wait.key!r} does not match its schema: "
                + "; ".join(_where(e) + e.message for e in errors[:5])
            )
        return
    try:
        validate(schema, value)
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"input for wait {wait.key!r} does not match its schema: {exc}"
        ) from None


def _where(error: Any) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return f"{path}: " if path else ""


def continue_execution(
    journal: Journal, record: ExecutionRecord, *, reason: str, server_url: str | None
) -> ExecutionRecord:
    """Send the execution to where it runs (see the module's docstring)."""
    if runs_where_started(journal, record):
        if not _ready.mark_ready(journal, record, reason):
            raise LeaseError(
                f"execution {record.exec_id} changed while it was being continued (another "
                f"process resumed or cancelled it); see `kitaru executions get {record.exec_id}`"
            )
        return _control.get_execution(journal, record.exec_id)
    from kitaru.stacks import _resolve
    from kitaru.stacks._submit import check_server_image, resubmit

    check_server_image(
        record, _resolve.get_stack(journal, record.stack), record.metadata.get("image")
    )
    return resubmit(journal, record, server_url=server_url)


def runs_where_started(journal: Journal, record: ExecutionRecord) -> bool:
    """Whether the execution's stack runs flows on the machine that starts them, which
    for the server would be its own host."""
    if _ready.for_workers(record):
        return True
    from kitaru.stacks import _resolve

    try:
        stack = _resolve.get_stack(journal, record.stack)
    except KitaruUsageError:
        return record.orchestrator == "local"
    return stack.orchestrator == "local"


def resume(journal: Journal, exec_id: str, *, server_url: str | None) -> ExecutionRecord:
    from kitaru._sleep import sleeping_until

    record = _control.get_execution(journal, exec_id)
    _control.check_resumable(record)
    if record.status == "waiting":
        until = sleeping_until(journal.waits(exec_id))
        if until is not None and until > time.time():
            return record  # too early: it keeps sleeping (its view says until when)
    return continue_execution(journal, record, reason="resume requested", server_url=server_url)


# How far ahead of the server's clock a runner's may be when it ends a sleep itself.
SLEEP_SKEW = 60.0


def refuse_answer(wait: WaitRecord) -> None:
    """A sleep (kitaru.sleep) is a wait nobody answers."""
    if wait.metadata.get("sleep"):
        raise KitaruUsageError(
            f"{wait.key!r} of execution {wait.exec_id} is a kitaru.sleep(), not a wait: it "
            "takes no input and ends by itself at its wake time"
        )


def answer(
    journal: Journal,
    exec_id: str,
    wait_name: str,
    value: Any,
    *,
    resume: bool = True,
    server_url: str | None = None,
    timed_out: bool = False,
    artifact_id: str | None = None,
) -> ExecutionRecord:
    """Store the answer to a pending wait as JSON, then continue the execution where it
    runs. `timed_out`: the flow itself took the wait's default after its timeout."""
    record = _control.get_execution(journal, exec_id)
    wait = _control.find_wait(journal, exec_id, wait_name)
    if not timed_out:  # (the flow itself ends its sleep past the wake time)
        refuse_answer(wait)
    elif wait.metadata.get("sleep") and time.time() < (wait.timeout_at or 0) - SLEEP_SKEW:
        raise InvalidInputError(
            f"sleep {wait.key!r} of execution {exec_id} ends at its wake time, not before"
        )
    if wait.status != "pending":
        raise KitaruUsageError(
            f"wait {wait.key!r} of execution {exec_id} is already answered; nothing was changed"
        )
    status = _control.status_of(record)
    if status in ("completed", "cancelled", "failed"):
        raise KitaruUsageError(
            f"execution {exec_id} is {status}; its wait {wait.key!r} can no longer be answered"
        )
    if timed_out:
        if not wait.has_default or wait.timeout_at is None or value != wait.default:
            raise InvalidInputError(
                f"wait {wait.key!r} has no such default to take after a timeout"
            )
    else:
        check_answer(wait, value)
    if artifact_id is not None and parse_call_output_id(artifact_id) is not None:
        raise InvalidInputError(f"{artifact_id!r} names a call output; choose another id")
    encoded = _serialize.encode(value, what=f"input for wait {wait.key!r}")
    # Small answers sit inline in the journal: only a large one needs the execution's store.
    large = len(encoded.data) > INLINE_MAX
    artifact = build_artifact(
        exec_id=exec_id,
        store=open_store(record.artifact_store or "" if large else _config.artifact_store_uri()),
        name=wait.key,
        producer="wait",
        producer_key=wait.key,
        encoded=encoded,
        metadata={"timed_out": True} if timed_out else None,
        artifact_id=artifact_id,
    )
    if not journal.answer_wait(exec_id, wait.key, artifact, now=time.time()):
        raise KitaruUsageError(
            f"wait {wait.key!r} of execution {exec_id} was answered by someone else just now"
        )
    record = _control.get_execution(journal, exec_id)
    if resume and _control.status_of(record) == "waiting":
        return continue_execution(
            journal, record, reason=f"wait {wait.key!r} was answered", server_url=server_url
        )
    return record


def replay(
    journal: Journal,
    exec_id: str,
    *,
    from_: str,
    overrides: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
    server_url: str | None,
) -> ExecutionRecord:
    """A new execution reusing the source's outputs before `from_`, recorded without its
    code (overrides and inputs as JSON), then continued where it runs."""
    record = _control.record_replay(
        journal, exec_id, from_=from_, overrides=overrides, inputs=inputs
    )
    return continue_execution(
        journal, record, reason=f"replay of {exec_id} from {from_!r}", server_url=server_url
    )


# A running execution stops at its next heartbeat; the server waits at most this long
# for it, so a cancel request never holds one of its threads for minutes.
MAX_CANCEL_WAIT = 10.0


def cancel(journal: Journal, exec_id: str, grace: float) -> ExecutionRecord:
    return _control.cancel(
        exec_id, grace=min(grace, MAX_CANCEL_WAIT), journal=journal, signal_processes=False
    )


def sweep_timed_out(journal: Journal, exec_id: str, *, server_url: str | None) -> ExecutionRecord:
    record = _control.get_execution(journal, exec_id)
    return continue_execution(journal, record, reason="a wait timed out", server_url=server_url)
