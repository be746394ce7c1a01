"""How the web UI's execution and diff pages lay out what they show: the timeline of
checkpoint calls, parallel groups and waits, output grouped per call, artifact previews
and the lines of a diff. Plain functions of the views the client returns."""

from __future__ import annotations

import json
from typing import Any


def _timeline(view: dict[str, Any], wait_seq: dict[str, int]) -> list[dict[str, Any]]:
    """Checkpoint calls and waits in the order the flow reached them, each with the state
    a person reads: ran, reused, failed, override, waiting or answered. Calls that ran at
    the same time get a group row above them with their wall time."""
    rows: list[dict[str, Any]] = []
    groups = view.get("parallel_groups", [])
    spans = [c["duration_s"] for c in view["checkpoints"]] + [g["wall_s"] for g in groups]
    longest = max([*spans, 1e-6])
    for n, g in enumerate(groups):
        members = view["checkpoints"][g["first"] : g["last"] + 1]
        names = sorted({c["name"] for c in members})
        states = sorted({_state(c) for c in members})
        ran = any(_state(c) in ("ran", "failed") for c in members)
        rows.append(
            {
                "kind": "group",
                "key": f"{names[0]} ×{len(members)}"
                if len(names) == 1
                else f"{len(members)} calls",
                "position": members[0]["position"],
                "order": 0,
                "group": n,
                "state": states[0] if len(states) == 1 else "mixed",
                "detail": "in parallel" + (f" · sum {_duration(g['sum_s'])}" if ran else ""),
                "duration": _duration(g["wall_s"]) if ran else "",
                "bar": round(100 * g["wall_s"] / longest) if ran else 0,
                "error": None,
                "output": None,
            }
        )
    for c in view["checkpoints"]:
        state = _state(c)
        ran = state in ("ran", "failed")
        rows.append(
            {
                "kind": "checkpoint",
                "key": c["key"],
                "position": c["position"],
                "order": 1,
                "group": c.get("group"),
                "state": state,
                "detail": _origin_detail(c),
                "duration": _duration(c["duration_s"]) if ran else "",
                "bar": round(100 * c["duration_s"] / longest) if ran else 0,
                "error": c.get("error"),
                "output": c.get("output"),
            }
        )
    for w in view["waits"]:
        state = {"pending": "waiting", "timed_out": "waiting"}.get(w["status"], w["status"])
        rows.append(
            {
                "kind": "wait",
                "key": w["key"],
                "position": wait_seq.get(w["key"], 0),
                "order": 1,
                "group": None,
                "state": state,
                "detail": w.get("question") or "",
                "duration": "",
                "bar": 0,
                "error": None,
                "output": None,
            }
        )
    # Journal order, a group's row just before its first call; waits by their position.
    first_of = {n: g["first"] for n, g in enumerate(groups)}
    index = {c["key"]: i for i, c in enumerate(view["checkpoints"])}

    def order(row: dict[str, Any]) -> tuple[int, int, int]:
        if row["kind"] == "group":
            return (view["checkpoints"][first_of[row["group"]]]["position"], 0, 0)
        return (row["position"], row["order"], index.get(row["key"], 0))

    rows.sort(key=order)
    return rows


def _state(c: dict[str, Any]) -> str:
    return str(
        {"ran": "ran", "journal": "reused", "reused": "reused"}.get(c["origin"], c["origin"])
    )


def _origin_detail(c: dict[str, Any]) -> str:
    if c["origin"] == "journal":
        return f"from the journal (run {c['run']})"
    if c["origin"] == "reused":
        return f"from {c.get('reused_from')}"
    if c["origin"] == "override":
        return "value given at replay"
    return f"run {c['run']}" + (f", {c['attempts']} attempts" if c.get("attempts", 1) > 1 else "")


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _preview_text(p: dict[str, Any]) -> dict[str, Any]:
    if p["kind"] == "json":
        text = json.dumps(p["value"], indent=2, ensure_ascii=False)
    elif p["kind"] == "text":
        text = str(p["value"])
    else:
        return {"kind": p["kind"], "text": p.get("reason", "")}
    return {"kind": p["kind"], "text": text if len(text) <= 2000 else text[:2000] + "\n…"}


def _group_logs(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for g in lines:
        header = (g["checkpoint"], g["run"])
        if not groups or groups[-1]["header"] != header:
            groups.append(
                {"header": header, "checkpoint": g["checkpoint"], "run": g["run"], "text": ""}
            )
        prefix = "[stderr] " if g["stream"] == "stderr" else ""
        groups[-1]["text"] += prefix + g["text"]
    return groups


def _diff_lines(text: str | None) -> list[tuple[str, str]]:
    if not text:
        return []
    out = []
    for line in text.splitlines():
        kind = "add" if line.startswith("+") else "del" if line.startswith("-") else "ctx"
        if line.startswith(("+++", "---", "@@")):
            kind = "hdr"
        out.append((kind, line))
    return out
