"""The ways work reaches a worker (an answer by CLI, a webhook through the server) and
the bad input a user types at `kitaru worker`, `kitaru queues` and `flow.submit`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kitaru.journal import Journal
from tests.server_process import ServerProcess
from tests.workers.support import (
    Workers,
    env_for,
    env_through_server,
    kitaru,
    statuses,
    submit,
    wait_until,
    write_flows,
)


def _claims(workers: Workers, exec_id: str) -> int:
    return sum(
        1
        for i in range(len(workers.procs))
        for e in workers.events(i)
        if e.get("event") == "claimed" and e.get("exec_id") == exec_id
    )


def test_an_answer_by_cli_hands_a_submitted_execution_back_to_its_queue(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    workers.start("--concurrency", "2")
    [exec_id] = submit(project, worker_env, "approve.submit(7)")
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "waiting", 30, workers.output)
    answered = kitaru(project, worker_env, "executions", "input", exec_id, "ok", "true", "--json")
    assert answered.returncode == 0, answered.stderr
    # The CLI ran nothing itself: the execution went back to its queue, for a worker.
    shown = json.loads(answered.stdout)
    assert shown["status"] in ("queued", "running", "completed"), shown
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "completed", 30, workers.output)
    record = journal.get_execution(exec_id)
    assert record is not None and record.runs == 2 and record.worker
    assert _claims(workers, exec_id) == 2


def test_a_sweep_hands_a_submitted_execution_back_to_its_queue(
    workers: Workers, journal: Journal, project: Path, worker_env: dict[str, str]
) -> None:
    first = workers.start()
    [exec_id] = submit(project, worker_env, "timed.submit(2)")
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "waiting", 30, workers.output)
    workers.stop()  # nobody to notice the timeout but the sweep
    assert first.returncode == 0
    time.sleep(1.2)  # the wait's timeout is 1 s
    swept = kitaru(project, worker_env, "executions", "sweep")
    assert swept.returncode == 0, swept.stderr
    assert statuses(journal, [exec_id])[exec_id] == "queued"  # the sweep ran nothing
    workers.start()
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "completed", 30, workers.output)
    record = journal.get_execution(exec_id)
    assert record is not None and record.runs == 2


@pytest.mark.slow
def test_a_webhook_answer_through_the_server_is_run_by_a_worker_with_a_write_token(
    tmp_path: Path, journal_url: str, journal: Journal
) -> None:
    folder = tmp_path / "project"
    write_flows(folder)
    server = ServerProcess(journal_url, tmp_path / "server", args=("--sweep-interval", "0"))
    workers: Workers | None = None
    try:
        token = server.token("write", name="worker")
        env = env_through_server(tmp_path, server.url, token)
        [exec_id] = submit(folder, env, "approve.submit(3, queue='approvals')")
        workers = Workers(folder, env)
        workers.start("--queue", "approvals", name="edge-1")
        wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "waiting", 30, workers.output)
        with server.http(token) as http:
            made = http.post(f"/api/v1/executions/{exec_id}/waits/ok/webhook", json={})
            assert made.status_code == 200, made.text
        hook = httpx.URL(made.json()["url"])
        reply = httpx.post(f"{server.url}{hook.path}", params=dict(hook.params), json=True)
        assert reply.status_code == 202, reply.text
        wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "completed", 30, workers.output)
        got = kitaru(folder, env, "executions", "get", exec_id, "--json")
        assert got.returncode == 0, got.stderr
        view = json.loads(got.stdout)
        assert view["worker"] == "edge-1" and view["queue"] == "approvals"
        assert _claims(workers, exec_id) == 2
    finally:
        if workers is not None:
            workers.stop()
        server.stop()


# -- bad input --------------------------------------------------------------------------
@pytest.fixture
def here(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "project"
    write_flows(folder)
    env = env_for(f"sqlite:///{tmp_path / 'journal.db'}", tmp_path / "home", tmp_path / "l.txt")
    return folder, env


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["worker", "--flows", "nosuch"], "cannot import nosuch"),
        (["worker", "--flows", "wflows:nosuch"], "its flows: approve, crashes, steps, timed"),
        (["worker", "--flows", "missing.py"], "no such file"),
        (["worker", "--flows", "wflows", "--concurrency", "0"], "--concurrency must be"),
        (["worker", "--flows", "wflows", "--queue", "a b"], "queue name 'a b' is not valid"),
        (["queues", "set", "x", "--concurrency", "0"], "--concurrency must be a whole number"),
        (["queues", "set", "x", "--rate", "-3"], "--rate must be a whole number"),
        (["queues", "show", "no/such"], "queue name 'no/such' is not valid"),
    ],
)
def test_bad_worker_and_queue_input_exits_2_and_says_what_to_do(
    here: tuple[Path, dict[str, str]], args: list[str], says: str
) -> None:
    folder, env = here
    done = kitaru(folder, env, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_submit_records_nothing(here: tuple[Path, dict[str, str]]) -> None:
    folder, env = here
    [kept] = submit(folder, env, "steps.submit(1)")
    for call in ("steps.submit(1, queue='no such')", "steps.submit(1, priority=10**9)"):
        done = subprocess.run(
            [sys.executable, "-c", f"import wflows; wflows.{call}"],
            cwd=folder, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode != 0
        assert "InvalidInputError" in done.stderr and (
            "queue name" in done.stderr or "priority" in done.stderr
        )
    listed = json.loads(kitaru(folder, env, "executions", "list", "--json").stdout)
    assert [e["exec_id"] for e in listed] == [kept]
