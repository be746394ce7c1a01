"""`kitaru executions export` and `kitaru executions import` (kitaru/_portable.py)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from kitaru.cli._output import emit_json, table

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")


def _progress(as_json: bool) -> Callable[[str], None] | None:
    if as_json or not sys.stderr.isatty():
        return None
    return lambda line: print(line, file=sys.stderr, flush=True)


def export_command(
    exec_ids: list[str] = typer.Argument(..., help="The executions to export (kx_...)."),
    output: Path = typer.Option(
        ..., "--output", "-o", help="The bundle file to write (a zip file; replaced if there)."
    ),
    with_lineage: bool = typer.Option(
        False,
        "--with-lineage",
        help="Also export the executions a replay was made from, back to the first run.",
    ),
    allow_pickle: bool = typer.Option(
        False,
        "--allow-pickle",
        help="Also carry pickled artifacts (loading them runs code: only for people who "
        "trust you with that).",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Write executions to one portable file: their records, checkpoint outputs and
    artifacts, with content hashes that `import` checks.

    The bundle holds no lease, no container run id, no trace ids and nothing about
    stacks. Running executions cannot be exported until they stop.

    Example: `kitaru executions export kx_01a2... -o incident.kitaru`
    """
    from kitaru import _portable
    from kitaru.client import KitaruClient

    journal = KitaruClient().journal
    manifest = _portable.export(
        journal,
        exec_ids,
        output,
        with_lineage=with_lineage,
        allow_pickle=allow_pickle,
        progress=_progress(as_json),
    )
    summary = {
        "path": str(output),
        "executions": manifest["executions"],
        "artifacts": len(manifest["artifacts"]),
        "bytes": os.path.getsize(output),
    }
    if as_json:
        emit_json(summary)
        return
    print(
        f"wrote {output}: {len(summary['executions'])} execution(s), "
        f"{summary['artifacts']} stored artifact(s), {summary['bytes']:,} bytes"
    )
    print(f"import it elsewhere with: kitaru executions import {output}")


def import_command(
    bundle: Path = typer.Argument(..., help="A bundle written by `kitaru executions export`."),
    project: Path = typer.Option(
        None,
        "--project",
        help="Where the imported executions' flow code is (default: the current "
        "directory): a replay or resume loads it from there.",
    ),
    allow_pickle: bool = typer.Option(
        False,
        "--allow-pickle",
        help="Accept pickled artifacts in the bundle (loading them runs code).",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Import the executions of a bundle into this journal, their artifacts into this
    artifact store.

    Every hash is checked before anything is written; a tampered bundle is refused and
    names what fails. Executions already here are skipped. The imported executions keep
    their ids, can be read, diffed and replayed with local code.

    Example: `kitaru executions import incident.kitaru --project ~/src/agent`
    """
    from kitaru import _config, _portable
    from kitaru._errors import KitaruUsageError
    from kitaru.client import KitaruClient

    if os.environ.get("KITARU_SERVER_URL"):
        raise KitaruUsageError(
            "import writes a journal directly: unset KITARU_SERVER_URL and point "
            "KITARU_JOURNAL_URL at the server's database (or import on your own machine)"
        )
    where = project or Path.cwd()
    if not where.is_dir():
        raise KitaruUsageError(f"--project {where}: no such directory")
    done = _portable.import_bundle(
        KitaruClient().journal,
        bundle,
        store_uri=_config.artifact_store_uri(),
        project=where,
        allow_pickle=allow_pickle,
        progress=_progress(as_json),
    )
    if as_json:
        emit_json(done)
        return
    table(["exec_id", "flow", "outcome"], [[d["exec_id"], d["flow"], d["outcome"]] for d in done])
