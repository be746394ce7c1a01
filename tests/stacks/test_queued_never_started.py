"""An execution whose container ends before it takes the execution (here: Python cannot
start, PYTHONHOME points nowhere) is not `queued` forever once the process that started
it has exited: `kitaru executions get` and the server's sweep ask the Docker engine and
mark it failed, naming the run and quoting the end of its log. A real Docker engine, the
journal on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kitaru.journal import open_journal
from kitaru.server._sweeper import QUEUED_CHECK_AFTER, Sweeper
from tests.conftest import kitaru_cli, run_python
from tests.containers import container_of
from tests.stacks._services import extra_ca, fresh_database, need, write_project

SERVICES = ("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("never-started"))


@pytest.fixture
def broken_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    env = need(*SERVICES)
    journal = fresh_database()
    monkeypatch.setenv("KITARU_JOURNAL_URL", journal)
    registered = kitaru_cli(
        "stack", "register", "broken",
        "--orchestrator", "docker",
        "--artifact-store", (tmp_path / "artifacts").as_uri(),
        "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set", f'ca_certificates=["{extra_ca()}"]',
        # The container's Python dies before importing anything, kitaru included.
        "--set", "environment.PYTHONHOME=/nonexistent",
        "--use",
    )  # fmt: skip
    assert registered.returncode == 0, registered
    yield journal


def start(project: Path) -> str:
    """Start the flow from a process that exits at once: no handle polls its status."""
    started = run_python(project / "agent.py", "kites", "no-wait", cwd=project, timeout=1200)
    assert started.returncode == 0, started
    return started.stdout.strip().splitlines()[-1]


def get(exec_id: str) -> dict[str, Any]:
    view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
    return view


def test_executions_get_fails_an_execution_whose_container_never_took_it(
    broken_stack: str, project: Path
) -> None:
    exec_id = start(project)
    run_id = container_of(exec_id, exited=True)["Id"]

    # Reads within the first seconds leave it queued (no API call); then one asks.
    deadline = time.monotonic() + 60
    view = get(exec_id)
    while view["status"] == "queued" and time.monotonic() < deadline:
        time.sleep(0.5)
        view = get(exec_id)
    assert view["status"] == "failed", view
    assert view["run_id"] == run_id
    assert f"the docker run {run_id} ended (failed, exit code 1)" in view["error"]
    assert "No module named 'encodings'" in view["error"]  # the container's log tail
    listed = kitaru_cli("executions", "list", "--json").json()
    assert [(e["exec_id"], e["status"]) for e in listed] == [(exec_id, "failed")]


def test_the_server_sweep_fails_it_after_a_minute(broken_stack: str, project: Path) -> None:
    exec_id = start(project)
    run_id = container_of(exec_id, exited=True)["Id"]
    journal = open_journal(broken_stack)
    sweeper = Sweeper(journal, interval=0)

    queued = journal.get_execution(exec_id)
    assert queued is not None and queued.status == "queued"
    sweeper.sweep(now=queued.updated_at + 1)  # queued for less than a minute: left alone
    record = journal.get_execution(exec_id)
    assert record is not None and record.status == "queued"

    sweeper.sweep(now=record.updated_at + QUEUED_CHECK_AFTER + 1)
    record = journal.get_execution(exec_id)
    assert record is not None and record.status == "failed", record
    assert record.error is not None
    assert f"the docker run {run_id} ended (failed, exit code 1)" in record.error
    assert "No module named 'encodings'" in record.error
