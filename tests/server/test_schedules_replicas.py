"""Schedules through real servers: two replicas on one PostgreSQL fire a per-second schedule
for about 10 s (not 30: the suite runs on shared machines) with exactly one execution per
tick; tokens decide who may create and delete; a worker that knows only the server runs
what the ticks queued."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from kitaru.journal import open_journal
from tests.conftest import write_script
from tests.journal.conftest import fresh_postgres_url
from tests.server_process import ServerProcess

SECONDS = 10


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    url = fresh_postgres_url()
    args = ("--sweep-interval", "0", "--schedule-interval", "0.2")
    store = tmp_path_factory.mktemp("shared-store").as_uri()  # replicas share their store
    servers: list[ServerProcess] = []
    try:
        for i in range(2):
            folder = tmp_path_factory.mktemp(f"replica{i}")
            servers.append(ServerProcess(url, folder, store=store, args=args))
        yield servers
    finally:
        for s in servers:
            s.stop()


def _project(folder: Path) -> Path:
    write_script(
        folder / "sflows.py",
        """
        from kitaru import checkpoint, flow

        @checkpoint
        def greet(name: str) -> str:
            return "hi " + name

        @flow
        def hello(name: str) -> str:
            return greet(name)
        """,
    )
    return folder


def _cli(
    server: ServerProcess, token: str, home: Path, cwd: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kitaru", *args],
        env=server.client_env(token, home), cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_two_replicas_start_each_tick_of_a_per_second_schedule_once(
    replicas: list[ServerProcess], tmp_path: Path
) -> None:
    a, b = replicas
    project = _project(tmp_path / "project")
    write = a.token("write", name="scheduler")
    made = _cli(a, write, tmp_path / "home", project, "schedules", "create", "each-second",
                "--flow", "sflows:hello", "--cron", "* * * * * *", "--catchup", "all",
                "--args", '{"name": "kit"}', "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    time.sleep(SECONDS)
    paused = _cli(b, write, tmp_path / "home", project, "schedules", "pause", "each-second")
    assert paused.returncode == 0, paused.stderr
    time.sleep(1)  # a pass that read the schedule before the pause ends its transaction

    journal = open_journal(a.journal_url)
    runs = journal.schedule_runs("each-second", limit=1000)
    assert {r.status for r in runs} == {"started"}
    ticks = sorted(r.tick for r in runs)
    assert len(ticks) >= SECONDS - 2, [r.tick for r in runs]
    assert ticks == [ticks[0] + i for i in range(len(ticks))]  # every second, none missed
    executions = [
        e for e in journal.list_executions(flow="hello", limit=1000) if e.metadata.get("schedule")
    ]
    per_tick = Counter(e.metadata["schedule"]["tick"] for e in executions)
    assert len(per_tick) == len(ticks) and set(per_tick.values()) == {1}
    assert {r.exec_id for r in runs} == {e.exec_id for e in executions}
    # Which replica won each tick varies (passes are jittered); shown with -s.
    print("ticks started by", dict(Counter(r.by for r in runs)))

    history = _cli(a, write, tmp_path / "home", project, "schedules", "history", "each-second",
                   "--json", "--limit", "1000")  # fmt: skip
    assert history.returncode == 0, history.stderr
    assert len(json.loads(history.stdout)) == len(ticks)
    one = executions[0]
    shown = _cli(a, write, tmp_path / "home", project, "executions", "get", one.exec_id, "--json")
    assert json.loads(shown.stdout)["schedule"]["name"] == "each-second"

    # A worker that knows only the server runs what the ticks queued.
    worker = _cli(a, write, tmp_path / "home", project, "worker", "--flows", "sflows",
                  "--until-empty", "--poll", "0.05")  # fmt: skip
    assert worker.returncode == 0, worker.stdout + worker.stderr
    statuses = Counter(r.execution_status for r in journal.schedule_runs("each-second", limit=1000))
    assert statuses == {"completed": len(ticks)}
    first = datetime.fromisoformat(json.loads(history.stdout)[-1]["tick"]).timestamp()
    assert first == ticks[0]


def test_tokens_decide_who_creates_and_deletes_schedules(
    replicas: list[ServerProcess], tmp_path: Path
) -> None:
    a, _ = replicas
    project = _project(tmp_path / "project")
    home = tmp_path / "home"
    read, write, admin = a.token("read"), a.token("write"), a.token("admin")
    spec = ("--flow", "sflows:hello", "--cron", "0 3 * * *", "--args", '["kit"]')
    refused = _cli(a, read, home, project, "schedules", "create", "nightly", *spec)
    assert refused.returncode != 0 and "read-only" in refused.stderr
    names = json.loads(_cli(a, read, home, project, "schedules", "list", "--json").stdout)
    assert "nightly" not in [s["name"] for s in names]  # a read token stored nothing
    assert _cli(a, write, home, project, "schedules", "create", "nightly", *spec).returncode == 0
    listed = json.loads(_cli(a, read, home, project, "schedules", "list", "--json").stdout)
    assert "nightly" in [s["name"] for s in listed]
    not_admin = _cli(a, write, home, project, "schedules", "delete", "nightly")
    assert not_admin.returncode != 0 and "admin" in not_admin.stderr
    assert _cli(a, admin, home, project, "schedules", "delete", "nightly").returncode == 0
    with a.http(read) as http:
        body = {"name": "x", "flow": "hello", "target": {"kind": "flow"}, "cron": "* * * * *",
                "timezone": "UTC", "args": {}, "catchup": "skip"}  # fmt: skip
        assert http.post("/api/v1/schedules", json=body).status_code == 403
    with a.http(write) as http:
        bad = http.post("/api/v1/schedules", json={**body, "cron": "nonsense"})
        assert bad.status_code == 422 and "cron" in bad.json()["detail"]
        bad = http.post("/api/v1/schedules", json=body)  # a flow target without its refs
        assert bad.status_code == 422
        assert "x" not in [s["name"] for s in http.get("/api/v1/schedules").json()]
