"""`kitaru artifacts ...`"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer

from kitaru.cli._output import emit_json, short_time, size, table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="List, read and compare artifacts.\n\n"
    "Example: `kitaru artifacts list kx_01a21c6d03e6c01d6771b05dc136`",
    no_args_is_help=True,
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of a table.")


def _client() -> Any:
    from kitaru.client import KitaruClient

    return KitaruClient()


@app.command("list")
def list_(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    as_json: bool = JSON_OPT,
) -> None:
    """List the artifacts of an execution: inputs, checkpoint outputs, saves, wait inputs,
    the result.

    Example: `kitaru artifacts list kx_01a21c6d03e6c01d6771b05dc136`
    """
    artifacts = _client().artifacts.list(exec_id)
    if as_json:
        emit_json([a.to_dict() for a in artifacts])
        return
    table(
        ["artifact", "name", "version", "producer", "type", "size", "where", "created"],
        [
            [
                a.artifact_id,
                a.name,
                a.version,
                a.producer,
                a.type.split(":")[-1],
                size(a.size),
                "journal" if a.uri is None else a.uri,
                short_time(a.to_dict()["created_at"]),
            ]
            for a in artifacts
        ],
    )


@app.command()
def get(
    artifact_id: str = typer.Argument(..., help="Artifact id (ka_...)."),
    out: str | None = typer.Option(None, "--out", help="Write the stored bytes to this file."),
    as_json: bool = JSON_OPT,
) -> None:
    """Print an artifact's value (JSON as JSON, text as text), or write its bytes to --out.

    Examples:

    - `kitaru artifacts get ka_01a21c6d04a8e3b2f0d9c7e15b44`
    - `kitaru artifacts get ka_01a21c6d04a8e3b2f0d9c7e15b44 --out draft.txt`
    """
    from kitaru import _serialize

    artifact = _client().artifacts.get(artifact_id)
    data = artifact.read_bytes()
    if out is not None:
        with open(out, "wb") as f:
            f.write(data)
        print(f"wrote {size(len(data))} to {out}", file=sys.stderr)
        return
    ok, value = _serialize.to_jsonable(artifact.serializer, data)
    if as_json:
        view = artifact.to_dict()
        view["value"] = value if ok else None
        emit_json(view)
        return
    if not ok:
        print(
            f"artifact {artifact_id} holds {artifact.serializer} data ({size(len(data))}); "
            "write it to a file with --out",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    if isinstance(value, str):
        print(value)
    else:
        print(json.dumps(value, indent=2, ensure_ascii=False))


@app.command()
def diff(
    exec_a: str = typer.Argument(..., help="First execution id."),
    exec_b: str = typer.Argument(..., help="Second execution id."),
    as_json: bool = JSON_OPT,
) -> None:
    """Compare two executions checkpoint by checkpoint, then their results: same, changed
    (with a unified diff of text and JSON values), or only in one of them.

    Example: `kitaru artifacts diff kx_01a21c6d03e6c01d6771b05dc136 kx_01a21c8e5f1b7a9c04d2e6b3a871`
    """
    result = _client().artifacts.diff(exec_a, exec_b)
    if as_json:
        emit_json(result)
        return
    table(
        ["checkpoint", "status"],
        [[e["key"], e["status"].replace("_", " ")] for e in result["checkpoints"]],
    )
    for e in result["checkpoints"]:
        if e["status"] == "changed" and e.get("diff"):
            print()
            print(e["diff"], end="")
    print(f"\nresult: {_result_text(result)}")
    if result.get("result_diff"):
        print(result["result_diff"], end="")


def _result_text(result: dict[str, Any]) -> str:
    status = result["result"]
    if status == "only_in_a":
        return f"only in A; no result in B ({result['b']} is {result['b_status']})"
    if status == "only_in_b":
        return f"only in B; no result in A ({result['a']} is {result['a_status']})"
    if status == "same" and result.get("a_status") != "completed":
        return "no result in A or B"
    return str(status)
