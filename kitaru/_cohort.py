"""Replay many: re-run a cohort of past executions from one checkpoint with the current
code, and say per execution and checkpoint what changed (`kitaru executions replay
--flow F --from KEY`).

A regression test for agents: change a prompt or a model, replay last week's runs from
the step that uses it, and read the matrix. Each replay reuses every output above
`--from` (no model call is made again for them), so a cohort costs what the changed
steps cost.

The matrix compares each replay with its source, checkpoint by checkpoint, by content
hash: `same`, `changed`, `failed` (the replay's call failed), `new` (only the replay made
the call), `missing` (the replay never got there); and the result the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kitaru._errors import KitaruUsageError
from kitaru.journal import ExecutionRecord, Journal

# Statuses at which a replay has done what it can without help.
_SETTLED = frozenset({"completed", "failed", "cancelled", "waiting", "crashed"})


def parse_age(text: str, option: str = "--since") -> float:
    """Seconds in `30s`, `15m`, `12h`, `7d`, `2w` (as `kitaru gc --older-than` reads them)."""
    from kitaru._retention import parse_age as age

    try:
        return age(text)
    except KitaruUsageError as exc:
        raise KitaruUsageError(f"{option} {exc}") from None


def select(
    journal: Journal,
    flow: str,
    *,
    status: str | None = "completed",
    since: float | None = None,
    limit: int = 20,
) -> list[ExecutionRecord]:
    """The newest executions of `flow` to replay: with `status`, started within `since`
    seconds, at most `limit`; never a replay made by an earlier cohort of the same
    source (those are the cohort's outputs, not its inputs)."""
    if limit < 1:
        raise KitaruUsageError(f"--limit {limit}: give at least 1")
    oldest = time.time() - since if since is not None else None
    window = max(limit * 4, 100)
    while True:
        page = journal.list_executions(flow=flow, status=status, limit=window)
        found = [
            r
            for r in page
            if not r.metadata.get("cohort") and (oldest is None or r.created_at >= oldest)
        ]
        # Earlier cohorts' replays are newest: look further back until enough sources
        # are found or the journal has no more.
        if len(found) >= limit or len(page) < window:
            return found[:limit]
        window *= 4


@dataclass
class Replayed:
    source: str
    replay: str | None = None
    status: str = "failed"
    error: str | None = None
    cells: dict[str, str] = field(default_factory=dict)
    result: str = "missing"


def replay_all(
    client: Any,
    sources: Sequence[ExecutionRecord],
    *,
    from_: str,
    overrides: Mapping[str, Any],
    concurrency: int,
    progress: Callable[[str], None] | None = None,
) -> list[Replayed]:
    """Replay each source from `from_` and compare it with its source. With concurrency
    above 1 the replays run in background processes, that many at a time."""
    from kitaru._errors import KitaruError

    if concurrency < 1:
        raise KitaruUsageError(f"--concurrency {concurrency}: give at least 1")
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    tag = f"from {from_} at {stamp}.{int(now * 1000) % 1000:03d} UTC"

    def one(record: ExecutionRecord) -> Replayed:
        row = Replayed(record.exec_id)
        try:
            view = client.executions.replay(
                record.exec_id, from_=from_, overrides=overrides, detach=concurrency > 1
            )
            row.replay = view.exec_id
            client.journal.set_metadata(view.exec_id, {"cohort": tag})
            row.status = _settle(client, view.exec_id) if concurrency > 1 else view.status
        except KitaruError as exc:
            row.error = str(exc)
        except Exception as exc:  # one broken replay does not lose the others' rows
            row.error = f"{type(exc).__name__}: {exc}"
        if progress:
            progress(f"{record.exec_id} -> {row.replay or '-'}: {row.status}")
        return row

    if concurrency == 1:
        rows = [one(r) for r in sources]
    else:
        with ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="kitaru-cohort"
        ) as pool:
            rows = list(pool.map(one, sources))
    for row in rows:
        if row.replay is not None:
            _compare(client.journal, row)
    return rows


def _settle(client: Any, exec_id: str) -> str:
    while True:
        status = str(client.executions.get(exec_id).status)
        if status in _SETTLED:
            return status
        time.sleep(0.2)


def _compare(journal: Journal, row: Replayed) -> None:
    from kitaru._diff import diff_executions

    assert row.replay is not None
    diff = diff_executions(journal, row.source, row.replay)
    failed = {c.key for c in journal.calls(row.replay) if c.status == "failed"}
    for entry in diff["checkpoints"]:
        status = entry["status"]
        row.cells[entry["key"]] = {"only_in_a": "missing", "only_in_b": "new"}.get(status, status)
    for key in failed:
        row.cells[key] = "failed"
    if row.status != "completed":
        row.result = "failed" if row.status in ("failed", "crashed") else row.status
    else:
        row.result = {"only_in_a": "missing", "only_in_b": "new"}.get(
            diff["result"], diff["result"]
        )


def matrix(rows: Sequence[Replayed]) -> dict[str, Any]:
    """The cohort as data: the checkpoint keys in order, each row, and a summary."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row.cells if k not in keys)
    summary = {"replayed": len(rows), "same": 0, "changed": 0, "failed": 0, "other": 0}
    for row in rows:
        if row.replay is None or row.result == "failed":
            summary["failed"] += 1
        elif row.result == "same" and all(v == "same" for v in row.cells.values()):
            summary["same"] += 1
        elif row.result in ("same", "changed"):
            summary["changed"] += 1
        else:
            summary["other"] += 1
    return {
        "checkpoints": keys,
        "executions": [
            {
                "source": r.source,
                "replay": r.replay,
                "status": r.status,
                "error": r.error,
                "checkpoints": r.cells,
                "result": r.result,
            }
            for r in rows
        ],
        "summary": summary,
    }


def cohorts(journal: Journal, flow: str, *, limit: int = 1000) -> dict[str, list[ExecutionRecord]]:
    """The replays that earlier cohorts of `flow` made, by cohort (newest first), from
    the flow's newest `limit` executions."""
    found: dict[str, list[ExecutionRecord]] = {}
    for record in journal.list_executions(flow=flow, limit=limit):
        tag = record.metadata.get("cohort")
        if isinstance(tag, str) and record.replayed_from:
            found.setdefault(tag, []).append(record)
    return dict(sorted(found.items(), key=lambda kv: -max(r.created_at for r in kv[1])))


def matrix_of(journal: Journal, replays: Sequence[ExecutionRecord]) -> dict[str, Any]:
    """The matrix of a cohort that ran before (what the web UI shows)."""
    from kitaru._lease import effective_status

    rows = []
    for record in replays:
        assert record.replayed_from is not None
        row = Replayed(record.replayed_from, record.exec_id)
        row.status = effective_status(record.status, record.owner, record.lease_until)
        if journal.get_execution(record.replayed_from) is None:
            row.error = "its source was deleted"
        else:
            _compare(journal, row)
        rows.append(row)
    return matrix(rows)
