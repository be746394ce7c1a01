"""`kitaru executions replay --flow F --from KEY`: replay many, print the matrix."""

from __future__ import annotations

import sys
from typing import Any

import typer

from kitaru.cli._output import emit_json, table

# One mark per cell, so a matrix of many checkpoints stays readable in a terminal.
MARKS = {"same": "=", "changed": "~", "failed": "x", "new": "+", "missing": "-", "waiting": "w"}


def replay_many(
    client: Any,
    flow: str,
    from_: str,
    overrides: dict[str, Any],
    *,
    status: str,
    since: str | None,
    limit: int,
    concurrency: int,
    as_json: bool,
) -> dict[str, Any]:
    from kitaru import _cohort
    from kitaru._errors import KitaruUsageError

    age = _cohort.parse_age(since) if since is not None else None
    sources = _cohort.select(client.journal, flow, status=status, since=age, limit=limit)
    if not sources:
        raise KitaruUsageError(
            f"no {status} execution of flow {flow!r}"
            + (f" in the last {since}" if since else "")
            + " to replay; `kitaru executions list --flow "
            + f"{flow}` shows what there is"
        )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    rows = _cohort.replay_all(
        client,
        sources,
        from_=from_,
        overrides=overrides,
        concurrency=concurrency,
        progress=None if as_json or not sys.stderr.isatty() else progress,
    )
    return _cohort.matrix(rows)


def show(data: dict[str, Any], *, as_json: bool, fail_on_change: bool) -> None:
    summary = data["summary"]
    if as_json:
        emit_json(data)
    else:
        keys = data["checkpoints"]
        rows = [
            [
                e["source"],
                e["replay"] or "-",
                *(MARKS.get(e["checkpoints"].get(k, "missing"), "?") for k in keys),
                e["result"],
            ]
            for e in data["executions"]
        ]
        table(["source", "replay", *keys, "result"], rows)
        print()
        print("  ".join(f"{mark} {word}" for word, mark in MARKS.items()))
        print(
            f"{summary['replayed']} replayed: {summary['same']} all same, "
            f"{summary['changed']} changed, {summary['failed']} failed"
            + (f", {summary['other']} other (waiting)" if summary["other"] else "")
        )
        for e in data["executions"]:
            if e["error"]:
                print(f"{e['source']}: {e['error']}", file=sys.stderr)
    if summary["failed"] or (fail_on_change and (summary["changed"] or summary["other"])):
        raise typer.Exit(1)
