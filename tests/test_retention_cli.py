"""`kitaru executions delete` and `kitaru gc` on executions real flows made: a replay that
outlives its source still loads what it reuses; bad input deletes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import kitaru_cli, run_python, write_script

FLOWS = """
import sys
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def fetch(n: int) -> str:
    return "x" * n  # above 16 KiB: stored in the artifact store

@checkpoint
def shout(text: str) -> str:
    return text.upper()

@flow
def pipeline(n: int) -> str:
    return shout(fetch(n))[:3]

@flow
def approval(n: int) -> str:
    return "yes" if kitaru.wait("approve", schema=bool) else "no"

if __name__ == "__main__":
    target = pipeline if sys.argv[1] == "pipeline" else approval
    print(target.run(int(sys.argv[2])).exec_id)
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write_script(tmp_path / "flows.py", FLOWS)
    return tmp_path


def _start(project: Path, flow: str) -> str:
    started = run_python(project / "flows.py", flow, "40000", cwd=project)
    assert started.returncode == 0, started
    return started.stdout.strip().splitlines()[-1]


def _objects(kitaru_home: Path) -> set[str]:
    root = kitaru_home / "artifacts"
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_a_replay_outlives_its_deleted_source_and_still_loads_what_it_reuses(
    project: Path, kitaru_home: Path
) -> None:
    source = _start(project, "pipeline")
    replay = kitaru_cli("executions", "replay", source, "--from", "shout", "--json", cwd=project)
    assert replay.returncode == 0, replay
    child = replay.json()["exec_id"]
    before = _objects(kitaru_home)
    assert {o.split("/")[0] for o in before} == {source, child}

    deleted = kitaru_cli("executions", "delete", source, "--json", cwd=project)
    assert deleted.returncode == 0, deleted
    assert deleted.json()["deleted"] == [source]
    # The source's objects the replay reuses (fetch's output) stay; the rest go.
    left = _objects(kitaru_home)
    assert left < before and any(o.startswith(source + "/") for o in left)
    again = kitaru_cli("executions", "replay", child, "--from", "shout", "--json", cwd=project)
    assert again.returncode == 0, again
    assert again.json()["status"] == "completed"

    for gone in (child, again.json()["exec_id"]):
        assert kitaru_cli("executions", "delete", gone, cwd=project).returncode == 0
    assert _objects(kitaru_home) == set()
    missing = kitaru_cli("executions", "get", source)
    assert missing.returncode == 2 and source in missing.stderr


def test_bad_input_says_what_to_do_and_deletes_nothing(project: Path, kitaru_home: Path) -> None:
    done = _start(project, "pipeline")
    waiting = _start(project, "approval")
    objects = _objects(kitaru_home)

    for args, said in [
        (("gc", "--older-than", "banana"), "'banana' is not an age"),
        (("gc", "--older-than", "-3d"), "is not an age"),
        (("gc", "--older-than", "0s", "--status", "completed,nope"), "unknown status 'nope'"),
        (("gc", "--older-than", "0s", "--status", "waiting"), "cancel them first"),
        (("gc",), "--older-than"),
        (("executions", "delete", done, "kx_0000000000000000000000000000"), "no execution kx_0"),
        (("executions", "delete", waiting, done), f"{waiting} is waiting: cancel first"),
    ]:
        answer = kitaru_cli(*args, cwd=project)
        assert answer.returncode == 2, (args, answer)
        assert said in answer.stderr, (args, answer.stderr)
        assert answer.stderr.startswith("error: ")

    listed = kitaru_cli("executions", "list", "--json").json()
    assert {e["exec_id"] for e in listed} == {done, waiting}
    assert _objects(kitaru_home) == objects

    # gc never takes a waiting execution; delete does when forced.
    swept = kitaru_cli("gc", "--older-than", "0s", "--json", cwd=project)
    assert swept.returncode == 0 and swept.json()["deleted"] == [done]
    forced = kitaru_cli("executions", "delete", waiting, "--force", "--json", cwd=project)
    assert forced.returncode == 0 and forced.json()["deleted"] == [waiting]
    assert kitaru_cli("executions", "list", "--json").json() == []
    assert _objects(kitaru_home) == set()


def _with_terminal_stderr(*args: str, cwd: Path) -> tuple[int, str, bytes]:
    """Run kitaru with stderr on a pseudo-terminal, as a person at a terminal has it."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    done = subprocess.run(
        [sys.executable, "-m", "kitaru", *args],
        stderr=slave,
        stdout=subprocess.PIPE,
        text=True,
        cwd=cwd,
        timeout=120,
    )
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return done.returncode, done.stdout, shown


def test_a_progress_bar_on_a_terminal_and_none_for_scripts(project: Path) -> None:
    first, second = _start(project, "pipeline"), _start(project, "pipeline")
    code, out, shown = _with_terminal_stderr("gc", "--older-than", "0s", "--dry-run", cwd=project)
    assert code == 0 and "would delete 2 executions" in out
    assert b"deleting executions" in shown
    code, out, shown = _with_terminal_stderr(
        "executions", "delete", first, second, "--json", cwd=project
    )
    assert code == 0 and shown == b""
    piped = kitaru_cli("gc", "--older-than", "0s", cwd=project)
    assert piped.returncode == 0 and piped.stderr == ""


def test_the_python_client_deletes_as_the_command_line_does(project: Path) -> None:
    from kitaru import KitaruClient

    first, second = _start(project, "pipeline"), _start(project, "pipeline")
    client = KitaruClient()
    assert client.executions.gc("0s", dry_run=True)["deleted"] == [first, second]
    assert client.executions.delete(first)["deleted"] == [first]
    assert client.executions.gc(0.0, statuses="completed")["deleted"] == [second]
    assert client.executions.list() == []
