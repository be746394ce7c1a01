"""A SQLite journal locked past its busy timeout, and a disk that fills up under a running flow: the SQLite journal on a small tmpfs, then
the file artifact store on one. The flow stops with one line naming the path and the
free space, the journal stays consistent, and `kitaru executions resume` finishes the
execution once the file system has room again. Mounting needs root; elsewhere these
tests are skipped."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, kitaru_cli, run_python, write_script

FLOW = """
import json, os, sys, time
from kitaru import checkpoint, flow

SIDE = os.environ["SIDE"]
SIZE = int(os.environ["SIZE"])

@checkpoint
def step(i: int) -> str:
    fd = os.open(SIDE, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{i}\\n".encode())
    os.close(fd)
    time.sleep(float(os.environ.get("PAUSE", "0")))
    return str(i) * SIZE

@flow
def fill(n: int) -> int:
    return sum(len(step(i)) for i in range(n))

if __name__ == "__main__":
    handle = fill.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _grow(mnt: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=32m", str(mnt)], check=True)


def _run(tmp_path: Path, n: int, **env: str) -> tuple[str, list[str]]:
    script = write_script(tmp_path / "fill.py", FLOW)
    proc = run_python(script, str(n), env={"SIDE": str(tmp_path / "side.txt"), **env})
    assert proc.returncode != 0 or "completed" not in proc.stdout, proc
    return proc.stderr, proc.stderr.strip().splitlines()


def _exec_id(line: str) -> str:
    return line.split("execution ", 1)[1].split(maxsplit=1)[0]


def _resume_and_check(tmp_path: Path, exec_id: str, n: int, env: dict[str, str]) -> None:
    done = kitaru_cli(
        "executions", "resume", exec_id, cwd=tmp_path,
        env={"SIDE": str(tmp_path / "side.txt"), "PYTHONPATH": str(REPO), **env},
    )  # fmt: skip
    assert done.returncode == 0, done
    shown = kitaru_cli("executions", "get", exec_id, "--json", env=env).json()
    assert shown["status"] == "completed", shown
    ran = Counter((tmp_path / "side.txt").read_text().split())
    assert len(ran) == n
    # Only the call the full disk interrupted ran twice.
    assert sum(count - 1 for count in ran.values()) <= 1


def test_a_full_journal_disk_stops_the_flow_with_one_line(tmp_path: Path, small_fs: Path) -> None:
    journal = small_fs / "journal.db"
    env = {"KITARU_JOURNAL_URL": f"sqlite:///{journal}", "SIZE": "4000"}  # inline outputs
    os.environ.update(env)
    try:
        err, lines = _run(tmp_path, 400, **env)
        assert len(lines) == 1, err
        [line] = lines
        assert line.startswith("kitaru: execution ") and str(journal) in line, line
        assert "KiB free" in line and "kitaru executions resume" in line, line
        with sqlite3.connect(journal) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        _grow(small_fs)
        _resume_and_check(tmp_path, _exec_id(line), 400, env)
    finally:
        for key in env:
            os.environ.pop(key, None)


def test_a_full_artifact_store_fails_the_call_with_one_line(tmp_path: Path, small_fs: Path) -> None:
    store = small_fs / "artifacts"
    env = {"KITARU_ARTIFACT_STORE": store.as_uri(), "SIZE": "40000"}  # stored as files
    err, lines = _run(tmp_path, 60, **env)
    assert len(lines) == 1, err
    [line] = lines
    assert line.startswith("kitaru: execution ") and str(store) in line, line
    assert "KiB free" in line and "No space left" in line, line
    exec_id = _exec_id(line)
    shown = kitaru_cli("executions", "get", exec_id, "--json", env=env).json()
    assert shown["status"] == "failed"
    # Every completed call's bytes are there: nothing points at a file that is not.
    for call in shown["checkpoints"]:
        if call["status"] == "completed":
            assert (
                call["output"]["uri"] is None
                or Path(call["output"]["uri"].removeprefix("file://")).exists()
            )
    _grow(small_fs)
    _resume_and_check(tmp_path, exec_id, 60, env)


def test_a_journal_locked_past_the_busy_timeout_is_waited_for(tmp_path: Path) -> None:
    """Another process holds SQLite's write lock for longer than the 30 s busy timeout (a
    backup, a long migration): the flow's commit gets `database is locked`, retries, and
    goes on once the lock is released; nothing runs or is committed twice."""
    journal = tmp_path / "journal.db"
    env = {
        **os.environ,
        "KITARU_JOURNAL_URL": f"sqlite:///{journal}",
        "SIZE": "10",
        "PAUSE": "0.05",
        "SIDE": str(tmp_path / "side.txt"),
        "PYTHONPATH": str(REPO),
    }
    script = write_script(tmp_path / "fill.py", FLOW)
    proc = subprocess.Popen(
        [sys.executable, str(script), "40"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    side = tmp_path / "side.txt"
    while not side.exists() or len(side.read_text().split()) < 5:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    holder = sqlite3.connect(journal, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    held_from = time.monotonic()
    while time.monotonic() - held_from < 33:  # past the busy timeout
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.5)
    holder.execute("COMMIT")
    holder.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert '"completed"' in out and "Traceback" not in err, err
    ran = Counter(side.read_text().split())
    assert len(ran) == 40 and set(ran.values()) == {1}
    with sqlite3.connect(journal) as db:
        rows = db.execute("SELECT key, status FROM calls ORDER BY seq").fetchall()
    assert len(rows) == 40 and {status for _key, status in rows} == {"completed"}
