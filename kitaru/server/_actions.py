"""Acting on executions from the server, which holds no user code.

Whatever runs the flow (resume, replay, the resume after an answer) happens where the
execution runs: on its orchestrator, or for the local stack in a background
`python -m kitaru ...` with the execution's recorded Python, as `--detach` does from
the CLI. The server records the request and starts that process; it never imports
the flow. Wait answers are checked against the wait's stored schema (a model's JSON
schema included) without importing the model class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kitaru import _control
from kitaru._errors import InvalidInputError
from kitaru._wait import validate
from kitaru.journal import ExecutionRecord, Journal, WaitRecord


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


def answer(
    journal: Journal, exec_id: str, wait_name: str, value: Any, *, resume: bool = True
) -> ExecutionRecord:
    """Store the answer to a pending wait, then resume the execution in the background."""
    _control.get_execution(journal, exec_id)
    wait = _control.find_wait(journal, exec_id, wait_name)
    if wait.status == "pending":
        check_answer(wait, value)
    return _control.give_input(
        exec_id,
        wait.key,
        value,
        resume_after=resume,
        detach=True,
        journal=journal,
        load_code=False,
    )


def resume(journal: Journal, exec_id: str) -> ExecutionRecord:
    return _control.resume(exec_id, detach=True, journal=journal)


def replay(
    journal: Journal,
    exec_id: str,
    *,
    from_: str,
    overrides: Mapping[str, Any] | None,
    inputs: Mapping[str, Any] | None,
) -> ExecutionRecord:
    return _control.replay(
        exec_id,
        from_=from_,
        overrides=overrides,
        inputs=inputs,
        detach=True,
        journal=journal,
        load_code=False,
    )


def cancel(journal: Journal, exec_id: str, grace: float) -> ExecutionRecord:
    return _control.cancel(exec_id, grace=grace, journal=journal)
