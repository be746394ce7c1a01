"""Comparing the checkpoint outputs of two executions, key by key."""

from __future__ import annotations

import difflib
import json
from typing import Any

from kitaru._artifact_io import read_bytes
from kitaru._control import get_execution
from kitaru.journal import ArtifactRecord, Journal


def _text(artifact: ArtifactRecord, store: str | None) -> str | None:
    """A readable rendering for a unified diff: pretty JSON or text; None for binary."""
    data = read_bytes(artifact, store)
    if artifact.serializer in ("json", "pydantic", "dataclass", "typed-json"):
        value = json.loads(data)
        if isinstance(value, str):
            return value if value.endswith("\n") else value + "\n"
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if artifact.serializer == "bytes":
        try:
            return data.decode()
        except UnicodeDecodeError:
            return None
    return None


def diff_executions(journal: Journal, exec_a: str, exec_b: str) -> dict[str, Any]:
    a, b = get_execution(journal, exec_a), get_execution(journal, exec_b)
    calls_a = {c.key: c for c in journal.calls(exec_a) if c.status == "completed"}
    calls_b = {c.key: c for c in journal.calls(exec_b) if c.status == "completed"}
    order = list(calls_a) + [k for k in calls_b if k not in calls_a]
    entries = []
    for key in order:
        ca, cb = calls_a.get(key), calls_b.get(key)
        entry: dict[str, Any] = {"key": key}
        if ca is None or cb is None:
            entry["status"] = "only_in_a" if cb is None else "only_in_b"
            entries.append(entry)
            continue
        oa, ob = ca.output, cb.output
        if (oa.content_hash if oa else None) == (ob.content_hash if ob else None):
            entry["status"] = "same"
        else:
            entry["status"] = "changed"
            ta = _text(oa, a.artifact_store) if oa else "null\n"
            tb = _text(ob, b.artifact_store) if ob else "null\n"
            if ta is not None and tb is not None:
                entry["diff"] = "".join(
                    difflib.unified_diff(
                        ta.splitlines(keepends=True),
                        tb.splitlines(keepends=True),
                        fromfile=f"{exec_a}/{key}",
                        tofile=f"{exec_b}/{key}",
                    )
                )
            else:
                entry["diff"] = None
        entries.append(entry)
    ra = journal.get_artifact(a.result_artifact) if a.result_artifact else None
    rb = journal.get_artifact(b.result_artifact) if b.result_artifact else None
    result_diff: str | None = None
    if ra is None or rb is None:
        # A failed, waiting or cancelled execution has no result to compare.
        result = "same" if ra is rb else ("only_in_a" if rb is None else "only_in_b")
    elif ra.content_hash == rb.content_hash:
        result = "same"
    else:
        result = "changed"
        ta, tb = _text(ra, a.artifact_store), _text(rb, b.artifact_store)
        if ta is not None and tb is not None:
            result_diff = "".join(
                difflib.unified_diff(
                    ta.splitlines(keepends=True),
                    tb.splitlines(keepends=True),
                    fromfile=f"{exec_a}/result",
                    tofile=f"{exec_b}/result",
                )
            )
    return {
        "a": exec_a,
        "b": exec_b,
        "a_status": a.status,
        "b_status": b.status,
        "checkpoints": entries,
        "result": result,
        "result_diff": result_diff,
        "changed": [e["key"] for e in entries if e["status"] == "changed"],
    }
