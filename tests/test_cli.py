"""The command line as a user types it: help, versions, JSON, and the bad inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import kitaru
from kitaru import KitaruClient, checkpoint, flow
from tests.conftest import kitaru_cli


@checkpoint
def big(n: int) -> bytes:
    return bytes(range(256)) * n


@checkpoint
def small(n: int) -> dict[str, int]:
    return {"n": n}


@flow
def produce(n: int) -> int:
    big(n)
    small(n)
    return n


def test_version_and_help_teach() -> None:
    version = kitaru_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"kitaru {kitaru.__version__}"
    top = kitaru_cli("--help")
    assert top.returncode == 0 and "executions" in top.stdout and "artifacts" in top.stdout
    sub = kitaru_cli("executions", "replay", "--help")
    assert sub.returncode == 0 and "--override" in sub.stdout and "--from" in sub.stdout


def test_help_shows_the_extras_to_install() -> None:
    # Rich reads "[server]" as markup unless escaped; the help must show it as typed.
    server = kitaru_cli("server", "--help", env={"COLUMNS": "200"})
    assert server.returncode == 0 and 'pip install "kitaru[server]"' in server.stdout
    provision = kitaru_cli("stack", "provision", "--help", env={"COLUMNS": "200"})
    assert provision.returncode == 0 and 'pip install "kitaru[aws]"' in provision.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["executions", "get", "kx_unknown"],
        ["executions", "logs", "kx_unknown"],
        ["executions", "resume", "kx_unknown"],
        ["executions", "cancel", "kx_unknown"],
        ["artifacts", "list", "kx_unknown"],
        ["artifacts", "get", "ka_unknown"],
        ["artifacts", "diff", "kx_a", "kx_b"],
    ],
)
def test_unknown_ids_give_one_line_and_exit_code_2(argv: list[str]) -> None:
    result = kitaru_cli(*argv)
    assert result.returncode == 2, result
    # Not the shape of an id of that kind: the message says which kind is expected.
    assert result.stderr.startswith("error: ") and " id " in result.stderr
    assert "list them with `kitaru " in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_listing_and_artifacts_as_json_and_files(tmp_path: Path) -> None:
    handle = produce.run(100)
    listing = kitaru_cli("executions", "list", "--json").json()
    assert [e["exec_id"] for e in listing] == [handle.exec_id]
    detail = kitaru_cli("executions", "get", handle.exec_id, "--json").json()
    for key in ("exec_id", "flow", "status", "result", "created_at", "ended_at", "checkpoints"):
        assert key in detail
    assert detail["status"] == "completed" and detail["result"] == 100

    artifacts = kitaru_cli("artifacts", "list", handle.exec_id, "--json").json()
    by_name = {a["name"]: a for a in artifacts}
    assert by_name["big"]["inline"] is False and by_name["big"]["size"] == 25600
    assert by_name["small"]["inline"] is True
    out = tmp_path / "big.bin"
    written = kitaru_cli("artifacts", "get", by_name["big"]["artifact_id"], "--out", str(out))
    assert written.returncode == 0 and out.read_bytes() == bytes(range(256)) * 100
    shown = kitaru_cli("artifacts", "get", by_name["small"]["artifact_id"])
    assert shown.returncode == 0 and '"n": 100' in shown.stdout
    status = kitaru_cli("executions", "list", "--status", "finished")
    assert status.returncode == 2 and "unknown status" in status.stderr


def test_corrupted_or_missing_artifact_file_names_it_and_keeps_the_journal() -> None:
    handle = produce.run(100)
    client = KitaruClient()
    record = next(a for a in client.artifacts.list(handle.exec_id) if a.name == "big")
    assert record.uri is not None
    path = Path(record.uri.removeprefix("file://"))
    path.write_bytes(b"garbage")
    corrupted = kitaru_cli("artifacts", "get", record.artifact_id, "--out", os.devnull)
    assert corrupted.returncode == 1
    assert record.artifact_id in corrupted.stderr and "corrupted" in corrupted.stderr
    path.unlink()
    missing = kitaru_cli("artifacts", "get", record.artifact_id)
    assert missing.returncode == 1 and "missing" in missing.stderr
    # The journal still knows everything; replay produces the artifact again.
    assert client.executions.get(handle.exec_id).status == "completed"
    replayed = client.executions.replay(handle.exec_id, from_="big")
    assert replayed.status == "completed"
    fresh = next(a for a in client.artifacts.list(replayed.exec_id) if a.name == "big")
    assert fresh.load() == bytes(range(256)) * 100


def test_unwritable_home_as_root_is_reported_by_the_journal(tmp_path: Path) -> None:
    # Root ignores permission bits; a path under a regular file can never be created.
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = kitaru_cli("executions", "list", env={"KITARU_HOME": str(blocker / "home")})
    # A configuration that cannot work is bad input (2), like an unknown id.
    assert result.returncode == 2
    assert "KITARU_HOME" in result.stderr and f"{blocker} is a file" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_durability_and_journal_url() -> None:
    bad_mode = kitaru_cli("executions", "list", env={"KITARU_DURABILITY": "always"})
    assert bad_mode.returncode == 2 and "'process' or 'fsync'" in bad_mode.stderr
    bad_url = kitaru_cli("executions", "list", env={"KITARU_JOURNAL_URL": "mysql://x"})
    assert bad_url.returncode == 2 and "not supported" in bad_url.stderr
    # A journal that is set up right but does not answer is a failure (1), not bad input.
    no_pg = kitaru_cli(
        "executions", "list", env={"KITARU_JOURNAL_URL": "postgresql://nobody@127.0.0.1:1/db"}
    )
    assert no_pg.returncode == 1 and "127.0.0.1:1" in no_pg.stderr
