"""Idempotent starts (kitaru/_idempotency.py): a start with a key that an earlier start of
the flow used gets that execution back, as it is now, and starts nothing; fifty starts
racing with one key, in threads or in processes, on SQLite and PostgreSQL, store one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kitaru
from kitaru._errors import ExecutionFailedError, KitaruUsageError
from kitaru.journal import ExecutionRecord, current_journal, open_journal
from tests.conftest import kitaru_cli, write_script
from tests.journal.conftest import fresh_postgres_url

RACERS = 50


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def journal_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    url = (
        f"sqlite:///{tmp_path / 'journal.db'}"
        if request.param == "sqlite"
        else fresh_postgres_url()
    )
    monkeypatch.setenv("KITARU_JOURNAL_URL", url)
    monkeypatch.setenv("KITARU_QUIET", "1")
    yield url


RAN: list[str] = []


@kitaru.flow
def greet(name: str) -> str:
    RAN.append(name)
    return f"hello {name}"


@kitaru.flow
def shout(name: str) -> str:
    return name.upper()


@kitaru.flow
def fragile(name: str) -> str:
    RAN.append(name)
    raise ValueError(f"no {name}")


@kitaru.flow
def approval(name: str) -> str:
    answer = kitaru.wait("ok", question=f"approve {name}?", schema=bool)
    return f"{name}: {answer}"


def _executions(flow: str) -> list[ExecutionRecord]:
    return current_journal().list_executions(flow=flow, limit=1000)


def test_fifty_threads_with_one_key_store_one_execution(journal_url: str) -> None:
    RAN.clear()
    gate = threading.Barrier(RACERS)
    handles: list[Any] = []
    errors: list[BaseException] = []

    def start() -> None:
        gate.wait()
        try:
            handles.append(greet.run("ada", idempotency_key="order-1"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    stored = _executions("greet")
    seen = f"errors {errors!r}; executions {[(e.exec_id, e.status) for e in stored]}; ran {RAN}"
    assert not errors, seen
    assert len({h.exec_id for h in handles}) == 1 and len(handles) == RACERS, seen
    assert [h.reused for h in handles].count(False) == 1, seen
    assert RAN == ["ada"], seen  # the body ran once
    (only,) = stored
    assert only.idempotency_key == "order-1" and only.status == "completed"
    assert handles[0].result() == "hello ada"


RACER = """
import json, os, sys, time
import kitaru

@kitaru.flow
def greet(name: str) -> str:
    return f"hello {name}"

from kitaru.journal import current_journal
current_journal()  # opened (and migrated) before the gate, so the race is the start
open(sys.argv[1] + ".ready", "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.005)
handle = greet.run("ada", idempotency_key="order-7")
print(json.dumps({"exec_id": handle.exec_id, "reused": handle.reused}))
"""


def test_fifty_processes_with_one_key_store_one_execution(journal_url: str, tmp_path: Path) -> None:
    script = write_script(tmp_path / "racer.py", RACER)
    open_journal(journal_url)  # the schema exists before fifty processes open it
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"p{n}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(RACERS)
    ]
    deadline = time.monotonic() + 300
    while sum((tmp_path / f"p{n}.ready").exists() for n in range(RACERS)) < RACERS:
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [
            p.communicate() for p in procs if p.poll() is not None
        ]
        time.sleep(0.05)
    go.touch()
    answers = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        answers.append(json.loads(out.strip().splitlines()[-1]))
    assert len({a["exec_id"] for a in answers}) == 1
    assert [a["reused"] for a in answers].count(False) == 1
    (only,) = _executions("greet")
    assert only.status == "completed" and only.exec_id == answers[0]["exec_id"]


@pytest.fixture
def sqlite_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    monkeypatch.setenv("KITARU_JOURNAL_URL", url)
    monkeypatch.setenv("KITARU_QUIET", "0")
    return url


def test_a_completed_start_returns_its_result_without_running_again(
    sqlite_journal: str, capsys: pytest.CaptureFixture[str]
) -> None:
    RAN.clear()
    first = greet.run("bob", idempotency_key="k1")
    second = greet.run("someone else", idempotency_key="k1")
    assert second.exec_id == first.exec_id and second.reused and not first.reused
    assert second.status == "completed" and second.result() == "hello bob"
    assert RAN == ["bob"]
    assert "idempotency key 'k1' started execution" in capsys.readouterr().err
    # Another key is another start.
    third = greet.run("bob", idempotency_key="k2")
    assert third.exec_id != first.exec_id and RAN == ["bob", "bob"]
    # Without a key nothing changes: every run is new.
    assert greet.run("bob").exec_id != greet.run("bob").exec_id


def test_a_failed_start_is_returned_failed_and_says_to_use_a_new_key(
    sqlite_journal: str, capsys: pytest.CaptureFixture[str]
) -> None:
    RAN.clear()
    first = fragile.run("x", idempotency_key="f1")
    capsys.readouterr()
    second = fragile.run("x", idempotency_key="f1")
    assert second.exec_id == first.exec_id and second.status == "failed" and RAN == ["x"]
    err = capsys.readouterr().err
    assert "it is failed and was not started again" in err
    assert "start it with a new key" in err and f"resume {first.exec_id}" in err
    with pytest.raises(ExecutionFailedError, match="ValueError: no x"):
        second.result()
    assert fragile.run("x", idempotency_key="f2").exec_id != first.exec_id


def test_a_waiting_start_is_returned_waiting(sqlite_journal: str) -> None:
    first = approval.run("deploy", idempotency_key="w1")
    assert first.status == "waiting"
    second = approval.run("deploy", idempotency_key="w1")
    assert (second.exec_id, second.status, second.reused) == (first.exec_id, "waiting", True)
    assert len(_executions("approval")) == 1


def test_a_key_of_another_flow_is_refused_with_its_name(sqlite_journal: str) -> None:
    held = greet.run("ada", idempotency_key="shared")
    with pytest.raises(KitaruUsageError) as refused:
        shout.run("ada", idempotency_key="shared")
    message = str(refused.value)
    assert f"already started execution {held.exec_id} of flow 'greet', not 'shout'" in message
    assert "'shout:shared'" in message
    assert _executions("shout") == []


@pytest.mark.parametrize("key", ["", "x" * 201, "line\nbreak"])
def test_an_unusable_key_is_refused_before_anything_is_recorded(
    sqlite_journal: str, key: str
) -> None:
    with pytest.raises(KitaruUsageError, match="printable characters"):
        greet.run("ada", idempotency_key=key)
    with pytest.raises(KitaruUsageError, match="printable characters"):
        greet.submit("ada", idempotency_key=key)
    assert _executions("greet") == []


def test_submits_with_one_key_queue_one_execution_that_a_run_then_finds(
    sqlite_journal: str,
) -> None:
    RAN.clear()
    queued = greet.submit("cy", queue="mail", idempotency_key="s1")
    again = greet.submit("cy", queue="mail", idempotency_key="s1")
    assert (again.exec_id, again.reused, again.status) == (queued.exec_id, True, "queued")
    ran = greet.run("cy", idempotency_key="s1")
    assert ran.exec_id == queued.exec_id and ran.status == "queued" and RAN == []
    (only,) = _executions("greet")
    assert only.queue == "mail"


def test_the_journal_keeps_one_execution_per_flow_and_key(journal_url: str) -> None:
    """The race itself, without the lookup before it: the second insert stores nothing
    and answers with the first one's id."""
    journal = open_journal(journal_url)
    first = ExecutionRecord("kx_1", "greet", "queued", 1.0, 1.0, idempotency_key="k")
    assert journal.create_execution(first, []) == "kx_1"
    for exec_id in ("kx_2", "kx_3"):
        again = ExecutionRecord(exec_id, "greet", "queued", 2.0, 2.0, idempotency_key="k")
        assert journal.create_execution(again, []) == "kx_1"
    other_flow = ExecutionRecord("kx_4", "shout", "queued", 3.0, 3.0, idempotency_key="k")
    assert journal.create_execution(other_flow, []) == "kx_4"  # scoped per flow
    keyless = [ExecutionRecord(f"kx_{n}", "greet", "queued", 4.0, 4.0) for n in (5, 6)]
    assert [journal.create_execution(r, []) for r in keyless] == ["kx_5", "kx_6"]
    assert sorted(e.exec_id for e in journal.list_executions(idempotency_key="k")) == [
        "kx_1",
        "kx_4",
    ]
    assert journal.get_execution("kx_2") is None


def test_a_start_that_loses_the_race_on_the_index_gets_the_winner_and_runs_nothing(
    journal_url: str,
) -> None:
    """Another starter has inserted the key and not committed yet, so this start's lookup
    finds nothing; its own insert then waits on the unique index, and once the other
    commits it stores nothing, runs nothing and answers with the other's execution."""
    from kitaru.journal import connect_journal

    RAN.clear()
    other: Any = connect_journal(journal_url)
    winner = ExecutionRecord(
        "kx_0123456789abcdef0123456789ab", "greet", "queued", time.time(), time.time(),
        idempotency_key="race-1",
    )  # fmt: skip
    handles: list[Any] = []
    with other._tx() as conn:
        assert other._insert_execution(conn, winner, []) == winner.exec_id
        racer = threading.Thread(
            target=lambda: handles.append(greet.run("ada", idempotency_key="race-1"))
        )
        racer.start()
        _until_blocked_on_the_index(journal_url)
    racer.join(60)
    (handle,) = handles
    assert (handle.exec_id, handle.reused, handle.status) == (winner.exec_id, True, "queued")
    assert RAN == [] and [e.exec_id for e in _executions("greet")] == [winner.exec_id]


def _until_blocked_on_the_index(journal_url: str) -> None:
    if not journal_url.startswith("postgres"):
        # SQLite shows no waiting writer; the start's lookup and insert take milliseconds.
        time.sleep(1.0)
        return
    import psycopg

    deadline = time.monotonic() + 30
    with psycopg.connect(journal_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO executions%'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the start never waited on the other starter's insert")


DEPLOYED = {
    "name": "kind",
    "kind": "POSITIONAL_OR_KEYWORD",
    "required": True,
    "annotation": "str",
    "json_type": "string",
}


def test_cli_invoke_twice_with_one_key_gives_one_execution(
    sqlite_journal: str, tmp_path: Path
) -> None:
    from kitaru.journal import DeploymentRecord

    record = DeploymentRecord(
        flow="nightly", version=0, image="img@sha256:01", digest="sha256:01",
        content_hash="c" * 64, lock_hash="l" * 64, source_hash="s" * 64,
        kitaru_version="1.0.0", signature=[DEPLOYED], flow_ref="agent:nightly",
        flow_file="agent.py", import_path=".", project_root=str(tmp_path), stack="local",
        orchestrator="local", builder="docker", reused=False, created_by="me",
        created_at=time.time(),
    )  # fmt: skip
    open_journal(sqlite_journal).create_deployment(record, tag="default")
    env = {"KITARU_JOURNAL_URL": sqlite_journal}
    args = ("deployments", "invoke", "nightly", "--args", '{"kind": "report"}', "--queue", "q")
    first = kitaru_cli(*args, "--idempotency-key", "night-1", "--json", env=env)
    assert first.returncode == 0, first
    second = kitaru_cli(*args, "--idempotency-key", "night-1", "--json", env=env)
    assert second.returncode == 0, second
    assert second.json()["exec_id"] == first.json()["exec_id"]
    assert (first.json()["reused"], second.json()["reused"]) == (False, True)
    assert second.json()["idempotency_key"] == "night-1"
    # The key is the invocation id too: a retry picks the version the first try picked.
    assert first.json()["invocation_id"] == "night-1"
    plain = kitaru_cli(*args, "--idempotency-key", "night-1", env=env)
    assert plain.returncode == 0, plain
    assert f"already started {first.json()['exec_id']} (queued)" in plain.stdout
    listed = kitaru_cli("executions", "list", "--json", env=env)
    assert [e["exec_id"] for e in listed.json()] == [first.json()["exec_id"]]
    found = kitaru_cli("executions", "list", "--idempotency-key", "night-1", "--json", env=env)
    assert [e["exec_id"] for e in found.json()] == [first.json()["exec_id"]]
    none = kitaru_cli("executions", "list", "--idempotency-key", "night-2", "--json", env=env)
    assert none.json() == []
    bad = kitaru_cli(*args, "--idempotency-key", "", env=env)
    assert bad.returncode == 2 and "printable characters" in bad.stderr
    assert os.environ.get("KITARU_SERVER_URL") is None


BACKGROUND = """
import json, sys
import kitaru

@kitaru.flow
def nightly(day: str) -> str:
    return f"report for {day}"

if __name__ == "__main__":
    handle = nightly.run(sys.argv[1], idempotency_key=sys.argv[2])
    print(json.dumps({"exec_id": handle.exec_id, "reused": handle.reused}))
"""


def test_starts_on_a_stack_that_runs_elsewhere_submit_once(tmp_path: Path) -> None:
    """The `local` orchestrator in subprocess mode goes the way container stacks go: the
    execution is recorded queued, then handed to the orchestrator. Concurrent starts
    with one key hand over one execution, once."""
    project = tmp_path / "proj"
    write_script(project / "pyproject.toml", '[project]\nname = "nightly"\nversion = "0"\n')
    script = write_script(project / "nightly.py", BACKGROUND)
    registered = kitaru_cli(
        "stack", "register", "bg", "-o", "local", "-a", (tmp_path / "art").as_uri(),
        "--set", "mode=subprocess", "--use",
    )  # fmt: skip
    assert registered.returncode == 0, registered
    env = {**os.environ, "KITARU_QUIET": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), "monday", "night-of-monday"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    answers = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        answers.append(json.loads(out.strip().splitlines()[-1]))
    assert len({a["exec_id"] for a in answers}) == 1
    assert [a["reused"] for a in answers].count(False) == 1
    exec_id = answers[0]["exec_id"]
    deadline = time.monotonic() + 60
    while (view := kitaru_cli("executions", "get", exec_id, "--json").json())["status"] not in (
        "completed",
        "failed",
    ):
        assert time.monotonic() < deadline, view
        time.sleep(0.2)
    assert view["status"] == "completed" and view["runs"] == 1, view
    assert view["idempotency_key"] == "night-of-monday"
    assert len(kitaru_cli("executions", "list", "--json").json()) == 1
    shown = kitaru_cli("executions", "get", exec_id)
    assert "started by idempotency key 'night-of-monday'" in shown.stdout, shown
