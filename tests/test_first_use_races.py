"""Processes that make one file at the same moment (in a fresh KITARU_HOME, an
artifact store, a bundle) all go on with what ends up on disk.

Each test starts two forked processes behind a barrier, many rounds over, each round a
new file: the window between one process creating a file and filling it is microseconds
wide, and only that many tries meet it.
"""

from __future__ import annotations

import multiprocessing
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run_python, write_script

from kitaru import _config, _doctor
from kitaru._export import export
from kitaru._llm._aliases import ModelAlias, load_all, register
from kitaru.artifacts._local import LocalArtifactStore
from kitaru.journal import open_journal
from kitaru.stacks._runs import _home_key

ROUNDS = 60
EXPORT_ROUNDS = 20  # each round opens the journal twice; the race showed in 3 of 4
DOCTOR_ROUNDS = 20  # the doctor asks over and over: most rounds met the race
PROCESSES = 2
_fork = multiprocessing.get_context("fork")


def _race(home: Path, work: Callable[[int], Any]) -> list[Any]:
    """What `work(i)` returned in each of the processes that ran it at once in `home`."""
    start = _fork.Barrier(PROCESSES)
    results = _fork.Queue()

    def run(i: int) -> None:
        os.environ["KITARU_HOME"] = str(home)
        start.wait()
        try:
            results.put((i, work(i)))
        except Exception as exc:
            results.put((i, f"failed: {exc!r}"))

    procs = [_fork.Process(target=run, args=(i,), daemon=True) for i in range(PROCESSES)]
    for proc in procs:
        proc.start()
    try:
        got = dict(results.get(timeout=60) for _ in procs)
        for proc in procs:
            proc.join(60)
    finally:
        for proc in procs:
            proc.terminate()  # one stuck: the test fails, and pytest can still exit
    return [got[i] for i in range(PROCESSES)]


def _every_round(rounds: int, one: Callable[[int], Any]) -> None:
    """Run `one(round_)` for each round: None when the round went right, else what it
    found; fail saying how many rounds went wrong and what the first two found."""
    bad = [(round_, found) for round_ in range(rounds) if (found := one(round_)) is not None]
    assert not bad, f"{len(bad)} of {rounds} rounds: {bad[:2]}"


def _run_key(_i: int) -> bytes:
    return _home_key()


def _run_key_without_links(_i: int) -> bytes:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")  # what FAT or gcsfuse say

    os.link = refuse  # this forked process only
    return _home_key()


@pytest.mark.parametrize("make", [_run_key, _run_key_without_links], ids=["linked", "in-place"])
def test_processes_making_the_run_key_at_once_all_keep_the_one_on_disk(
    tmp_path: Path, make: Callable[[int], bytes]
) -> None:
    # Two clients submitting through a server from a fresh KITARU_HOME: each seals its
    # runs with the key in `run-key`; one that read the file before the other had written
    # it kept an empty key, and could not act on its own runs afterwards. On a filesystem
    # without hard links (FAT, some network and bucket mounts) the key is created in
    # place, and a process finding it before its writer wrote it reads it again.
    def one(round_: int) -> Any:
        home = tmp_path / f"home{round_}"
        keys = _race(home, make)
        on_disk = (home / "run-key").read_bytes().strip()
        return None if len(on_disk) == 64 and all(key == on_disk for key in keys) else keys

    _every_round(ROUNDS, one)


def test_a_run_key_left_empty_by_a_killed_writer_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_HOME", str(tmp_path))
    (tmp_path / "run-key").write_bytes(b"")  # created, never written: its writer died
    key = _home_key()
    assert len(key) == 64 and (tmp_path / "run-key").read_bytes().strip() == key
    assert _home_key() == key


def _add_alias(i: int) -> bool:
    return register(ModelAlias(name=f"alias{i}", model="openai/gpt-4o-mini"))


def test_processes_adding_model_aliases_at_once_keep_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two `kitaru model add` at once: each read the aliases, added its own and wrote
    # them all back, and the one that wrote last dropped the other's.
    def one(round_: int) -> Any:
        home = tmp_path / f"home{round_}"
        results = _race(home, _add_alias)
        monkeypatch.setenv("KITARU_HOME", str(home))
        names = sorted(load_all())
        return None if names == [f"alias{i}" for i in range(PROCESSES)] else (names, results)

    _every_round(ROUNDS, one)


STORE_ROUNDS = 20
STORE_WRITES = 50  # each a write, then a delete that may take the directory away


def _store_work(root: str) -> Callable[[int], Any]:
    def work(i: int) -> int:
        store = LocalArtifactStore(root)
        store.check()
        stored = 0
        for n in range(STORE_WRITES):
            key = f"kx_1/ka_{i}_{n}"
            store.write(key, b"out")
            stored += store.read(key) == b"out"
            store.delete(key)  # its execution's last object, maybe: the directory goes too
        return stored

    return work


def test_writes_meeting_deletes_that_take_their_directory_away_store_every_object(
    tmp_path: Path,
) -> None:
    # `kitaru gc` deletes the last object of a failed execution while its resume writes
    # a new one: the delete removed the directory between the writer making it and
    # making its file in it, and the checkpoint failed.
    def one(round_: int) -> Any:
        results = _race(tmp_path, _store_work(str(tmp_path / f"store{round_}")))
        return None if results == [STORE_WRITES] * PROCESSES else results

    _every_round(STORE_ROUNDS, one)


FLOW = """
from kitaru import checkpoint, flow

@checkpoint
def fetch(n: int) -> str:
    return "page " * 5000 + str(n)  # kept in the artifact store, not inline

@flow
def research(n: int) -> int:
    return len(fetch(n))

if __name__ == "__main__":
    print("EXEC", research.run(3).exec_id)
"""


def _export_work(exec_id: str, target: Path) -> Callable[[int], Any]:
    def work(_i: int) -> int:
        return len(export(open_journal(_config.journal_url()), [exec_id], target)["executions"])

    return work


def test_two_exports_to_one_file_at_once_both_write_a_whole_bundle(
    tmp_path: Path, kitaru_home: Path
) -> None:
    # Two `kitaru executions export ... -o nightly.kitaru` at once (two CI jobs on one
    # workspace): both wrote `nightly.kitaru.partial`, the first renamed it into place
    # and the second failed with FileNotFoundError, its writes going into the bundle
    # the first had just finished.
    ran = run_python(write_script(tmp_path / "flows.py", FLOW), cwd=tmp_path)
    assert ran.returncode == 0, ran
    exec_id = ran.stdout.split()[1]

    def one(round_: int) -> Any:
        target = tmp_path / f"nightly{round_}.kitaru"
        results = _race(kitaru_home, _export_work(exec_id, target))
        with zipfile.ZipFile(target) as bundle:
            whole = bundle.testzip() is None
        left = sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name)
        return None if results == [1, 1] and whole and not left else (results, whole, left)

    _every_round(EXPORT_ROUNDS, one)


def _doctor_work(opened: multiprocessing.synchronize.Event) -> Callable[[int], Any]:
    def work(i: int) -> list[str]:
        if i == 0:
            open_journal(_config.journal_url())
            opened.set()
            return []
        said = set()
        while not opened.is_set():
            check = _doctor._journal()
            if check.status != "ok":
                said.add(check.summary)
        return sorted(said)

    return work


def test_the_doctor_says_ok_all_the_while_a_first_run_makes_the_journal(tmp_path: Path) -> None:
    # `kitaru doctor` while the first execution of a fresh KITARU_HOME starts: the file
    # was there, its tables not yet, and the doctor said the journal cannot be read.
    def one(round_: int) -> Any:
        said = _race(tmp_path / f"home{round_}", _doctor_work(_fork.Event()))
        return None if said == [[], []] else said

    _every_round(DOCTOR_ROUNDS, one)


def test_the_doctor_warns_of_an_old_journal_file_without_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a first run making it: a file emptied, or copied without its -wal file.
    monkeypatch.setenv("KITARU_HOME", str(tmp_path))
    journal = tmp_path / "journal.db"
    journal.write_bytes(b"")
    os.utime(journal, (1_700_000_000, 1_700_000_000))
    check = _doctor._journal()
    assert check.status == "warning", check
    assert "holds no tables" in check.summary and "journal.db-wal" in check.summary
    assert check.fix and "remove it" in check.fix
