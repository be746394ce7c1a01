"""The runs a developer submits through a server stay theirs to act on: a flow on a
`local` stack in subprocess mode, started by a client that knows only the server's URL
and a token, is inspected (`executions logs --orchestrator`) and cancelled from that
client, which sealed its run id when it submitted it (kitaru/stacks/_runs.py). The
server itself never acts on that run."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_script
from tests.server.conftest import Client
from tests.server.hostile import sqlite_server
from tests.server_process import ServerProcess

FLOW = """
import sys, time
from kitaru import checkpoint, flow

@checkpoint
def slow(seconds: float) -> str:
    print("working", flush=True)
    time.sleep(seconds)
    return "done"

@flow
def agent(seconds: float) -> str:
    return slow(seconds)

if __name__ == "__main__":
    print(agent.run(float(sys.argv[1])).exec_id)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from sqlite_server(tmp_path_factory, "runs-through-server", "--sweep-interval", "0.3")


def test_a_developer_cancels_and_inspects_the_run_they_submitted(
    server: ServerProcess, tmp_path: Path
) -> None:
    developer = Client(server, server.token("admin", name="developer"), tmp_path / "home")
    project = tmp_path / "project"
    write_script(project / "pyproject.toml", '[project]\nname = "agent"\nversion = "0"\n')
    script = write_script(project / "agent.py", FLOW)
    registered = developer.cli(
        "stack", "register", "bg", "-o", "local", "-a", server.store,
        "--set", "mode=subprocess", "--use", cwd=project,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    started = developer.python(script, "120")
    assert started.returncode == 0, started.stderr
    exec_id = started.stdout.strip().splitlines()[-1]

    deadline = time.monotonic() + 60
    view = developer.cli_json("executions", "get", exec_id)
    while view["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.3)
        view = developer.cli_json("executions", "get", exec_id)
    assert view["status"] == "running", view
    pid = int(view["run_id"].split(":")[1])
    assert view["metadata"]["run_seal"]  # sealed with the developer's own key

    logs = developer.cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0 and f"running execution {exec_id}" in logs.stdout, logs.stderr
    cancelled = developer.cli_json("executions", "cancel", exec_id, "--grace", "1")
    assert cancelled["status"] == "cancelled", cancelled
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)  # the developer's own background run, stopped by them


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has ended: it only waits for its parent (gone) to be reaped.
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
