"""`kitaru executions list` and `get` themselves, free of Typer: the Typer commands
(`_executions`) and the direct path (`_direct`) run these same functions, so they print
the same."""

from __future__ import annotations

from typing import Any

from kitaru.cli._output import emit_json, finish_execution, short_time, table

STATUSES = ("queued", "running", "waiting", "completed", "failed", "crashed", "cancelled")


def list_executions(
    flow: str | None, status: str | None, idempotency_key: str | None, limit: int, as_json: bool
) -> None:
    if status is not None and status not in STATUSES:
        from kitaru._errors import KitaruUsageError

        raise KitaruUsageError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    from kitaru.client import KitaruClient

    executions = KitaruClient().executions.list(
        flow=flow, status=status, idempotency_key=idempotency_key, limit=limit
    )
    if as_json:
        emit_json([e.to_dict() for e in executions])
        return
    if not executions:
        print("no executions" + (f" of flow {flow!r}" if flow else "") + " yet")
        return
    # The deployed version an execution ran, when any did (`kitaru deployments invoke`).
    deployed = any(e.data.get("deployment_version") for e in executions)
    table(
        ["execution", "flow", "status", "stack", *(["version"] if deployed else []), "created",
         "runs", "replay of"],
        [
            [
                e.exec_id,
                e.flow,
                e.status,
                _stack_text(e.data),
                *([e.data.get("deployment_version") or ""] if deployed else []),
                short_time(e.created_at),
                e.data.get("runs", 1),
                f"{e.replayed_from} @ {e.replay_point}" if e.replayed_from else "",
            ]
            for e in executions
        ],
    )  # fmt: skip


def get_execution(exec_id: str, as_json: bool) -> None:
    from kitaru.client import KitaruClient

    # A failed execution exits 1, as `resume` and `input` do when it fails again.
    finish_execution(KitaruClient().executions.get(exec_id).to_dict(), as_json)


def _stack_text(view: dict[str, Any]) -> str:
    stack, orchestrator = view.get("stack", "local"), view.get("orchestrator", "local")
    return stack if orchestrator == stack else f"{stack} ({orchestrator})"
