"""`kitaru gc` and `kitaru executions delete`: deleting executions and their bytes
(kitaru/_retention.py does the work; this reads the options and reports)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from kitaru.cli._output import emit_json

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")
DRY_RUN_OPT = typer.Option(False, "--dry-run", help="Say what would be deleted; change nothing.")
LINEAGE_OPT = typer.Option(
    False,
    "--with-lineage",
    help="Delete an execution even when a replay of it is still going (the replay keeps "
    "the outputs it reuses).",
)


def gc_command(
    older_than: str = typer.Option(
        ...,
        "--older-than",
        help="Delete executions that ended longer ago than this: 30d, 12h, 90m, 45s, 2w.",
    ),
    status: str | None = typer.Option(
        None,
        "--status",
        help="Only these statuses, comma-separated: completed, failed, cancelled "
        "(default: all three).",
    ),
    flow: str | None = typer.Option(None, "--flow", help="Only executions of this flow."),
    dry_run: bool = DRY_RUN_OPT,
    with_lineage: bool = LINEAGE_OPT,
    orphans: bool = typer.Option(
        False,
        "--orphans",
        help="Also list the artifact stores and delete objects no record names, of "
        "executions that ended or are gone since before the cutoff (what a process "
        "killed between writing an output and recording it leaves).",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Delete old executions: their journal rows and their artifact bytes, in whatever
    store holds them. Queued, running and waiting executions are never deleted; one a
    live replay still reuses is kept unless --with-lineage. Bytes a killed gc left
    behind are deleted by the next one.

    Examples:

    - `kitaru gc --older-than 30d --dry-run`
    - `kitaru gc --older-than 7d --status failed,cancelled --flow review --json`
    - `kitaru gc --older-than 30d --orphans`
    """
    from kitaru import _retention
    from kitaru.journal import current_journal

    age = _retention.parse_age(older_than)
    statuses = _retention.parse_statuses(status)
    with _progress(as_json, "deleting executions") as progress:
        report = _retention.collect(
            current_journal(),
            older_than=age,
            statuses=statuses,
            flow=flow,
            dry_run=dry_run,
            with_lineage=with_lineage,
            progress=progress,
            orphans=orphans,
        )
    _say(report, as_json)


def delete_command(
    exec_ids: list[str] = typer.Argument(..., help="Execution ids (kx_...)."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Delete queued, running or waiting executions too (their process loses its "
        "lease at its next write).",
    ),
    dry_run: bool = DRY_RUN_OPT,
    with_lineage: bool = LINEAGE_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Delete executions: their journal rows and their artifact bytes. Every id must
    exist and every execution must have ended (or pass --force); otherwise nothing is
    deleted.

    Examples:

    - `kitaru executions delete kx_01a21c6d03e6c01d6771b05dc136`
    - `kitaru executions delete kx_01a21c6d03e6c01d6771b05dc136 --dry-run --json`
    """
    from kitaru import _retention
    from kitaru.journal import current_journal

    with _progress(as_json, "deleting executions") as progress:
        report = _retention.delete(
            current_journal(),
            exec_ids,
            force=force,
            with_lineage=with_lineage,
            dry_run=dry_run,
            progress=progress,
        )
    _say(report, as_json)


@contextmanager
def _progress(as_json: bool, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr for people at a terminal; nothing for scripts."""
    if as_json or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(what, total=None)

    def advance(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield advance


def _say(report: Any, as_json: bool) -> None:
    if as_json:
        data = report.as_dict()
        data.pop("next_after", None)
        emit_json(data)
    else:
        _say_text(report)
    if report.objects_left:
        raise typer.Exit(1)


def _say_text(report: Any) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    line = f"{verb} {len(report.deleted)} executions"
    if not report.dry_run:
        line += f" and {report.objects_deleted} stored objects"
    if report.orphans:
        line += f"; {verb} {report.orphans} objects no record named"
    print(line)
    for exec_id, why in sorted(report.kept.items()):
        print(f"kept {exec_id}: {why}")
    for store, why in sorted(report.objects_left.items()):
        print(f"left in {store}: {why} (the next gc deletes them)", file=sys.stderr)
