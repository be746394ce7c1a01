"""Printing for the CLI: JSON for scripts, aligned plain-text tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

# The largest --limit a listing takes (a journal's integers stop not far above).
LIMIT_MAX = 1_000_000_000


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.upper().ljust(widths[i]) for i, h in enumerate(headers))
    print(line.rstrip())
    for row in cells:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())


def short_time(iso: str | None) -> str:
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f}ms"
    if seconds < 120:
        return f"{seconds:.2f}s"
    return f"{seconds / 60:.1f}m"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{n}B"


def preview(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"


_ORIGIN = {
    "ran": "ran",
    "journal": "from journal",
    "reused": "reused",
    "override": "override",
    "failed": "failed",
}


def finish_execution(view: dict[str, Any], as_json: bool) -> None:
    """Print an execution a command ended with; one that failed or crashed exits 1."""
    if as_json:
        emit_json(view)
    else:
        print_execution(view)
    if view["status"] in ("failed", "crashed"):
        raise SystemExit(1)


def print_execution(view: dict[str, Any]) -> None:
    print(f"execution  {view['exec_id']}")
    print(f"flow       {view['flow']}")
    print(f"status     {view['status']}")
    stack, orchestrator = view.get("stack", "local"), view.get("orchestrator", "local")
    print(f"stack      {stack}" + (f" ({orchestrator})" if orchestrator != stack else ""))
    if view.get("run_id"):
        print(f"run        {view['run_id']}")
    if view.get("deployment_version"):
        print(
            f"deployed   version {view['deployment_version']} "
            f"(invocation {view.get('invocation_id')})"
        )
    if view.get("worker") or (view.get("queue") or "default") != "default":
        where = f"queue {view.get('queue') or 'default'}"
        if view.get("priority"):
            where += f", priority {view['priority']}"
        if view.get("worker"):
            where += f"; worker {view['worker']}"
        print(f"queue      {where}")
    if view.get("idempotency_key"):
        print(f"started by idempotency key {view['idempotency_key']!r}")
    print(f"created    {short_time(view.get('created_at'))}")
    if view.get("ended_at"):
        print(f"ended      {short_time(view['ended_at'])}")
    if view.get("replayed_from"):
        print(f"replay of  {view['replayed_from']} from {view['replay_point']!r}")
    if view.get("runs", 0) > 1:
        print(f"runs       {view['runs']} (resumed {view['runs'] - 1}x)")
    if view.get("error"):
        print(f"error      {view['error']}")
    if view.get("sleeping_until"):
        print(f"sleeping   until {view['sleeping_until']}")
    checkpoints = view.get("checkpoints", [])
    if checkpoints:
        print()
        table(
            ["checkpoint", "status", "origin", "duration", "output"],
            _timeline(checkpoints, view.get("parallel_groups", [])),
        )
    waits = view.get("waits", [])
    if waits:
        print()
        table(
            ["wait", "status", "question", "since"],
            [
                [
                    w["key"],
                    w["status"],
                    f"sleep until {w['timeout_at']}"
                    if w.get("kind") == "sleep"
                    else w.get("question") or "",
                    short_time(w["since"]),
                ]
                for w in waits
            ],
        )
    if view["status"] == "completed":
        print()
        print(f"result     {preview(view.get('result'), 100)}")
    elif view["status"] == "waiting":
        pending = [w for w in waits if w["status"] in ("pending", "timed_out")]
        if view.get("sleeping_until"):
            print()
            print(f"sleeping until {view['sleeping_until']}; it continues by itself then")
        if pending:
            w = pending[0]
            print()
            print(f"waiting for input: kitaru executions input {view['exec_id']} {w['key']} <json>")
    elif view["status"] in ("failed", "crashed"):
        if view.get("traceback"):
            print()
            print(view["traceback"].rstrip("\n"))
        print()
        print(f"resume with: kitaru executions resume {view['exec_id']}")
    elif view.get("ready"):
        print()
        ready = view["ready"]
        queue = ready.get("queue", "default")
        print(f"ready to continue ({ready['reason']}); a worker on queue {queue} takes it:")
        print(f"  kitaru worker --flows <module> --queue {queue}")
        print(f"or, where its code lives: {ready['command']}")


def _timeline(checkpoints: list[dict[str, Any]], groups: list[dict[str, Any]]) -> list[list[str]]:
    """One row per call; calls that ran at the same time fold into one row with their wall
    time, and runs of 4+ alike calls (same checkpoint, status and origin) into one row,
    so that a fan-out or a 1000-step loop stays readable (--json has every call)."""
    rows: list[list[str]] = []
    i = 0
    while i < len(checkpoints):
        c = checkpoints[i]
        if c.get("group") is not None:
            group = groups[c["group"]]
            rows.append(_group_row(checkpoints[group["first"] : group["last"] + 1], group))
            i = group["last"] + 1
            continue
        j = i
        while (
            j + 1 < len(checkpoints)
            and checkpoints[j + 1].get("group") is None
            and checkpoints[j + 1]["name"] == c["name"]
            and checkpoints[j + 1]["status"] == c["status"]
            and _origin_text(checkpoints[j + 1]) == _origin_text(c)
        ):
            j += 1
        ran = c["origin"] == "ran" or c["status"] == "failed"
        if j - i >= 3:
            total = sum(x["duration_s"] for x in checkpoints[i : j + 1])
            rows.append([
                f"{c['key']} … {checkpoints[j]['key']}", c["status"], _origin_text(c),
                duration(total) if ran else "-", f"{j - i + 1} calls",
            ])  # fmt: skip
            i = j + 1
            continue
        rows.append([
            c["key"], c["status"], _origin_text(c), duration(c["duration_s"]) if ran else "-",
            _output_text(c),
        ])  # fmt: skip
        i += 1
    return rows


def _group_row(calls: list[dict[str, Any]], group: dict[str, Any]) -> list[str]:
    """One row for calls that ran in parallel: what they were, their wall time."""
    names = sorted({c["name"] for c in calls})
    label = f"{names[0]} ×{len(calls)}" if len(names) == 1 else f"{len(calls)} calls"
    statuses = sorted({c["status"] for c in calls})
    status = statuses[0] if len(statuses) == 1 else "mixed"
    failed = [c for c in calls if c["status"] == "failed"]
    origins = sorted({_origin_text(c) for c in calls})
    ran = any(c["origin"] == "ran" or c["status"] == "failed" for c in calls)
    detail = f"in parallel (sum {duration(group['sum_s'])})" if ran else "in parallel"
    if failed:
        detail = f"{len(failed)} failed: {preview(failed[0].get('error') or '', 40)}"
    ordered = sorted(calls, key=_branch_order)
    return [
        f"{label} ({ordered[0]['key']} … {ordered[-1]['key']})" if len(names) == 1 else label,
        status, origins[0] if len(origins) == 1 else "mixed",
        duration(group["wall_s"]) if ran else "-", detail,
    ]  # fmt: skip


def _branch_order(c: dict[str, Any]) -> tuple[tuple[int, ...], int]:
    branch = str(c.get("branch") or "")
    path = tuple(int(p) for p in branch.split(".") if p.isdigit())
    return path, int(c.get("branch_position") or 0)


def _origin_text(c: dict[str, Any]) -> str:
    text = str(_ORIGIN.get(c["origin"], c["origin"]))
    if c["origin"] == "reused" and c.get("reused_from"):
        text = f"reused from {c['reused_from']}"
    if c["origin"] == "cache":
        text = f"cache ({c.get('reused_from')})"
    if c["origin"] == "journal":
        text = f"from journal (run {c['run']})"
    return text


def _output_text(c: dict[str, Any]) -> str:
    if c.get("error"):
        return preview(c["error"], 50)
    out = c.get("output")
    if not out:
        return "-"
    return f"{str(out['type']).split(':')[-1]} {size(int(out['size']))}"
