"""Objects no record names (`kitaru gc --orphans`): what a process killed between writing
a checkpoint's output and recording it leaves, and what no note of a collection covers.

In the order it happens, per store the journal's executions use:

1. List the store's keys (`<exec_id>/<artifact_id>`; keys of any other shape were not
   written by Kitaru and are left alone).
2. Read the status of each key's execution. A key is a candidate when its execution
   ended (completed, failed, cancelled) before the cutoff, or is not in the journal and
   its id was made before the cutoff (an execution's inputs are written just before its
   row: a young id may be one being created).
3. Read which candidates a row names (any execution's calls or artifacts) and delete
   the others.

Listing comes first: a key listed was written before the status was read, so a writer
that still runs shows as running, and one that ended committed its record before the
status said so, and before step 3 reads the records.
"""

from __future__ import annotations

import re
from typing import Any

from kitaru.journal._retention import BATCH

_KEY = re.compile(r"^(kx_[0-9a-f]{28})/ka_[0-9a-f]{28}(_[0-9a-z]+)?$")
_ENDED = ("completed", "failed", "cancelled")


def id_time(exec_id: str) -> float:
    """When an id was made (seconds since the epoch)."""
    return int(exec_id[3:15], 16) / 1000


def stores(rows: Any, default: str | None) -> list[str]:
    """The store roots the journal's executions use, and `default`."""
    listed = rows._x("SELECT DISTINCT artifact_store FROM executions").fetchall()
    found = {str(r[0]) for r in listed if r[0]}
    if default:
        found.add(default)
    return sorted(found)


def find(rows: Any, store: Any, *, cutoff: float) -> list[str]:
    """Keys in `store` that no record names, of executions gone or ended before `cutoff`."""
    by_exec: dict[str, list[str]] = {}
    for key in store.list():
        match = _KEY.match(key)
        if match is not None:
            by_exec.setdefault(match.group(1), []).append(key)
    candidates: list[str] = []
    ids = sorted(by_exec)
    for start in range(0, len(ids), BATCH):
        part = ids[start : start + BATCH]
        marks = ", ".join("?" for _ in part)
        known = {
            str(e): (str(status), ended)
            for e, status, ended in rows._x(
                "SELECT exec_id, status, COALESCE(ended_at, updated_at) FROM executions "
                f"WHERE exec_id IN ({marks})",
                part,
            ).fetchall()
        }
        for exec_id in part:
            state = known.get(exec_id)
            gone = state is None and id_time(exec_id) < cutoff
            ended = state is not None and state[0] in _ENDED and float(state[1]) < cutoff
            if gone or ended:
                candidates.extend(by_exec[exec_id])
    root = store.uri.rstrip("/")
    uris = {f"{root}/{key}": key for key in candidates}
    named = rows.referenced_bytes(list(uris))
    return [key for uri, key in uris.items() if uri not in named]
