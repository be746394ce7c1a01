"""`kitaru executions watch` and `kitaru executions logs --follow`: an execution's live
feed (kitaru/_follow.py) printed as it arrives, one line per entry, each stamped with
the time it happened, and a final line when the execution ends or waits."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer

from kitaru._follow import Ending, follow
from kitaru.journal import EventRecord, Journal

# Exit codes as `executions get` gives them: the execution failed or crashed -> 1.
FAILED = ("failed", "crashed")


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def _data(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _ended(key: str | None, data: dict[str, Any]) -> str:
    took = f" in {data['duration_s']:.3f}s" if "duration_s" in data else ""
    error = f": {data['error']}" if data.get("error") else ""
    return f"{key} {data.get('status', 'ended')}{took}{error}"


def _line(e: EventRecord) -> str:
    data = e.data if isinstance(e.data, dict) else {}
    if e.kind == "run_started":
        return f"run {e.run} of {e.name} started"
    if e.kind == "run_ended":
        error = f": {data['error']}" if data.get("error") else ""
        return f"run {e.run} ended {data.get('status', e.name)}{error}"
    if e.kind == "call_started":
        return f"{e.call_key} started ({data.get('kind', 'checkpoint')})"
    if e.kind == "call_ended":
        return _ended(e.call_key, data)

    if e.kind == "wait":
        question = f": {data['question']}" if data.get("question") else ""
        return f"waits at {e.name}{question}"
    if e.kind == "output":
        where = e.call_key or "flow"
        text = str(data.get("text", "")).rstrip("\n").replace("\n", f"\n{' ' * 14}{where} | ")
        return f"{where} | {'[stderr] ' if e.name == 'stderr' else ''}{text}"
    where = f" in {e.call_key}" if e.call_key else ""
    reused = " (reused)" if e.reused else ""
    return f"event {e.name}{where} {_data(e.data)}{reused}"


def _as_json(item: EventRecord | Ending) -> str:
    if isinstance(item, Ending):
        return _data({"kind": "end", "status": item.status, "error": item.error})
    entry = {
        "seq": item.seq, "ts": item.ts, "run": item.run, "kind": item.kind, "name": item.name,
        "checkpoint": item.call_key, "data": item.data,
    }  # fmt: skip
    if item.reused:
        entry["reused"] = True
    return _data(entry)


def _final(exec_id: str, end: Ending) -> str:
    if end.status == "waiting":
        return (
            f"execution {exec_id} is waiting for input: kitaru executions waits, then "
            f"kitaru executions input {exec_id} <wait> '<json>'"
        )
    if end.status in FAILED:
        return f"execution {exec_id} {end.status}: {end.error or 'no error recorded'} (kitaru executions get {exec_id})"
    return f"execution {exec_id} {end.status}"


def watch(journal: Journal, exec_id: str, *, as_json: bool, poll: float) -> None:
    end: Ending | None = None
    for item in follow(journal, exec_id, poll=poll):
        if isinstance(item, Ending):
            end = item
        if as_json:
            print(_as_json(item), flush=True)
        elif isinstance(item, EventRecord) and item.kind == "calls_ended":
            # Fast calls compacted into one entry: a line for each, at its own end.
            for call in item.data.get("calls", []) if isinstance(item.data, dict) else []:
                ended = call.get("started_at", item.ts) + call.get("duration_s", 0)
                print(f"{_clock(ended)}  {_ended(call.get('key'), call)}", flush=True)
        elif isinstance(item, EventRecord):
            print(f"{_clock(item.ts)}  {_line(item)}", flush=True)
    assert end is not None
    if not as_json:
        print(_final(exec_id, end), flush=True)
    if end.status in FAILED:
        raise typer.Exit(1)


def follow_logs(
    journal: Journal, exec_id: str, *, checkpoint: str | None, as_json: bool, poll: float
) -> None:
    """Output entries only, headed per checkpoint call and run like `logs` prints them."""
    end: Ending | None = None
    current: tuple[Any, Any] | None = None
    for item in follow(journal, exec_id, poll=poll):
        if isinstance(item, Ending):
            end = item
            if as_json:
                print(_as_json(item), flush=True)
            continue
        if item.kind != "output" or (checkpoint is not None and item.call_key != checkpoint):
            continue
        if as_json:
            print(_as_json(item), flush=True)
            continue
        header = (item.call_key, item.run)
        if header != current:
            current = header
            name = f"checkpoint {item.call_key}" if item.call_key else "flow"
            print(f"── {name} (run {item.run}) ──")
        text = str(item.data.get("text", "")) if isinstance(item.data, dict) else ""
        sys.stdout.write(("[stderr] " if item.name == "stderr" else "") + text)
        sys.stdout.flush()
    assert end is not None
    if not as_json:
        print(_final(exec_id, end), file=sys.stderr, flush=True)
    if end.status in FAILED:
        raise typer.Exit(1)
