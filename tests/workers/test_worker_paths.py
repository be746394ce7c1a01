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
    # A timeout the stopping worker cannot reach first, however slow the machine.
    [exec_id] = submit(project, worker_env, "timed.submit(2, timeout=5)")
    wait_until(lambda: statuses(journal, [exec_id])[exec_id] == "waiting", 30, workers.output)
    workers.stop()  # nobody to notice the timeout but the sweep
    assert first.returncode == 0
    time.sleep(5.2)  # past the wait's timeout
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
        (
            ["worker", "--flows", "wflows:nosuch"],
            "its flows: approve, crashes, dozes, steps, timed",
        ),
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


def _deploy(folder: Path, journal: Journal) -> int:
    """Record a deployed version of `hello` whose snapshot is the project as it is now."""
    from kitaru_builders._lock import project_files

    from kitaru.deployments._deploy import manifest_of, source_hash
    from kitaru.journal import DeploymentRecord

    return journal.create_deployment(
        DeploymentRecord(
            flow="hello", version=0, image="registry.test/hello", digest="sha256:" + "0" * 64,
            content_hash="", lock_hash="",
            source_hash=source_hash(manifest_of(folder, project_files(folder))),
            kitaru_version="", signature=[], flow_ref="dflows:hello", flow_file="dflows.py",
            import_path=".", project_root=str(folder), stack="local", orchestrator="local",
            builder="docker", reused=False, created_by="test", created_at=time.time(),
        )
    ).version  # fmt: skip


def _edited_then_deployed(tmp_path: Path, ledger_path: Path, *, deployed_before: bool) -> str:
    """The worker imports `hello` returning "A"; the developer then edits the file to
    return "B", deploys that and invokes it into the worker's queue. What the invocation
    returned, or "queued" if no worker took it."""
    from kitaru.client import KitaruClient
    from kitaru.journal import open_journal
    from tests.journal.test_queues_journal import queued

    folder = tmp_path / "project"
    write_flows(folder)
    (folder / ".dockerignore").write_text("*.log\n")
    code = "from kitaru import flow\n\n\n@flow\ndef hello() -> str:\n    return {!r}\n"
    (folder / "dflows.py").write_text(code.format("A"))
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    workers = Workers(folder, env_for(url, tmp_path / "home", ledger_path))
    journal = open_journal(url)
    if deployed_before:
        _deploy(folder, journal)  # "A" as version 1, which the worker may run
    try:
        workers.start("--flows", "dflows", "--queue", "dq")
        (folder / "dflows.py").write_text(code.format("B"))
        version = _deploy(folder, journal)
        store = (tmp_path / "store").as_uri()
        invoked = queued("dq", flow="hello", deployment_version=version, artifact_store=store)
        journal.create_execution(invoked, [])
        deadline = time.monotonic() + 40  # the worker looks for new versions every 30 s
        while time.monotonic() < deadline:
            if statuses(journal, [invoked.exec_id])[invoked.exec_id] == "completed":
                break
            time.sleep(0.5)
    finally:
        workers.stop()
    if statuses(journal, [invoked.exec_id])[invoked.exec_id] != "completed":
        return "queued"
    result: str = KitaruClient(url).executions.get(invoked.exec_id).result
    return result


def test_a_worker_never_runs_a_version_deployed_from_files_edited_after_it_started(
    tmp_path: Path, ledger_path: Path
) -> None:
    # Version 1 is the code the worker imported; version 2 is the file edited since.
    assert _edited_then_deployed(tmp_path, ledger_path, deployed_before=True) in ("queued", "B")


@pytest.mark.xfail(
    strict=True,
    reason="a project no version was deployed from when the worker started is hashed from "
    "disk when its first version appears (kitaru/_queue.py:deployed_versions), so files "
    "edited since the import pass for the code the worker runs; closing it needs the "
    "project's file contents kept from import time",
)
def test_a_worker_started_before_any_deploy_never_runs_code_edited_after_it_started(
    tmp_path: Path, ledger_path: Path
) -> None:
    assert _edited_then_deployed(tmp_path, ledger_path, deployed_before=False) in ("queued", "B")
