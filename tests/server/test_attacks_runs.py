"""Attacks on running executions, their leases and the runs behind them, replayed
against a real `kitaru server start` process on SQLite: taking over a live lease,
reopening a finished execution with a leaked run token, making the server act on a
run id (a process, a container) a record names. Each test is the attacker's setup,
the request, then the effect that must not happen."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kitaru.server.routes._runner import MAX_LEASE_SECONDS
from tests.conftest import write_script
from tests.server.hostile import create, run_token, sqlite_server
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from sqlite_server(tmp_path_factory, "hostile-runs", "--sweep-interval", "0.3")


@pytest.fixture(scope="module")
def write_token(server: ServerProcess) -> str:
    return server.token("write", name="attacker")


@pytest.fixture(scope="module")
def victim_token(server: ServerProcess) -> str:
    return server.token("write", name="victim")


def _lease(http: object, exec_id: str, owner: str, **body: object) -> object:
    now = time.time()
    request = {"owner": owner, "expected_owner": None, "statuses": ["queued"], "now": now,
               "lease_until": now + 3600, **body}  # fmt: skip
    return http.post(f"/api/v1/runner/executions/{exec_id}/lease", json=request)  # type: ignore[attr-defined]


def test_a_live_lease_cannot_be_taken_over_through_transition_or_cancel_idle(
    server: ServerProcess, write_token: str, victim_token: str
) -> None:
    # Setup: someone's execution, running in a container elsewhere with a live lease.
    real_owner = "container-host:7:1.0:realnonce"
    with server.http(victim_token) as victim:
        exec_id = create(victim)
        assert _lease(victim, exec_id, real_owner).json() == {"taken": True}
    with server.http(write_token) as attacker:
        masked = attacker.get(f"/api/v1/records/executions/{exec_id}").json()["owner"]
        now = time.time()
        requeue = attacker.post(
            f"/api/v1/executions/{exec_id}/transition",
            json={"to": "queued", "from_statuses": ["running"], "expected_owner": masked,
                  "now": now},
        )  # fmt: skip
        cancel_idle = attacker.post(
            f"/api/v1/executions/{exec_id}/cancel-idle",
            json={"expected_owner": masked, "now": now},
        )
        # Had the requeue worked, this would have made the attacker its runner.
        taken = _lease(attacker, exec_id, "evil:1:1:x")
    assert requeue.status_code == 409 and "lease is live" in requeue.json()["detail"]
    assert cancel_idle.status_code == 409
    assert taken.json() == {"taken": False}
    with server.http(victim_token) as victim:
        now = time.time()
        beat = victim.post(
            f"/api/v1/runner/executions/{exec_id}/heartbeat",
            json={"owner": real_owner, "now": now, "lease_until": now + 60},
        )
        assert beat.json() == {"cancel": False}  # still the victim's
        assert victim.get(f"/api/v1/executions/{exec_id}").json()["status"] == "running"


def test_a_finished_execution_cannot_be_moved_back(server: ServerProcess, write_token: str) -> None:
    with server.http(write_token) as attacker:
        done = create(attacker, status="completed")
        cancelled = create(attacker, status="cancelled")
        answers = [
            attacker.post(
                f"/api/v1/executions/{exec_id}/transition",
                json={
                    "to": "queued",
                    "from_statuses": [status],
                    "expected_owner": None,
                    "now": time.time(),
                },
            )
            for exec_id, status in ((done, "completed"), (cancelled, "cancelled"))
        ]
        after = [
            attacker.get(f"/api/v1/executions/{e}").json()["status"] for e in (done, cancelled)
        ]
    assert [a.status_code for a in answers] == [422, 422], [a.text for a in answers]
    assert after == ["completed", "cancelled"]


HELLO = """
from kitaru import checkpoint, flow


@checkpoint
def greet() -> str:
    return "hello"


@flow
def hello() -> str:
    return greet()
"""


def test_a_run_token_dies_with_its_run_and_cannot_reopen_the_execution(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    # A run as a container does it: `kitaru run-execution` with the run token.
    project = tmp_path / "project"
    script = write_script(project / "hello.py", HELLO)
    with server.http(write_token) as http:
        exec_id = create(
            http, flow="hello", flow_ref="__main__:hello", flow_file=str(script),
            import_path=str(project), artifact_store=server.store,
        )  # fmt: skip
    leaked = run_token(server, exec_id)
    env = server.client_env(leaked, tmp_path / "container-home")
    ran = subprocess.run(
        [sys.executable, "-m", "kitaru", "run-execution", exec_id],
        env=env, cwd=project, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"execution {exec_id} completed" in ran.stdout

    # The token, read off the job spec afterwards, tries to reopen it for good.
    with server.http(leaked) as attacker:
        reopen = _lease(attacker, exec_id, "h:1:1.0:n2", statuses=["completed"], lease_until=1e15)
    assert reopen.status_code == 401  # revoked when the run finished
    with server.http(write_token) as http:
        # Nor may any other token claim a completed execution.
        claim = _lease(http, exec_id, "h:1:1.0:n3", statuses=["completed"])
        view = http.get(f"/api/v1/executions/{exec_id}").json()
    assert claim.json() == {"taken": False}
    assert view["status"] == "completed" and view["result"] == "hello"


def test_no_lease_outlives_the_servers_limit(server: ServerProcess, write_token: str) -> None:
    with server.http(write_token) as http:
        exec_id = create(http)
        asked_at = time.time()
        assert _lease(http, exec_id, "h:1:1.0:n", lease_until=1e15).json() == {"taken": True}
        leased = http.get(f"/api/v1/records/executions/{exec_id}").json()
        beat = http.post(
            f"/api/v1/runner/executions/{exec_id}/heartbeat",
            json={"owner": "h:1:1.0:n", "now": time.time(), "lease_until": 1e15},
        )
        beaten = http.get(f"/api/v1/records/executions/{exec_id}").json()
    assert beat.json() == {"cancel": False}
    for record in (leased, beaten):
        assert record["lease_until"] <= asked_at + MAX_LEASE_SECONDS + 60
