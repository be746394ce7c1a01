"""Attacks on running executions, their leases and the runs behind them, replayed
against a real `kitaru server start` process on SQLite: taking over a live lease,
reopening a finished execution with a leaked run token, making the server act on a
run id (a process, a container) a record names. Each test is the attacker's setup,
the request, then the effect that must not happen."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
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


# -- run ids a record names -----------------------------------------------------------


def test_a_write_token_cannot_make_the_server_kill_a_process(
    server: ServerProcess, write_token: str
) -> None:
    # Setup: some process on the server's machine, in its own process group.
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        with server.http(write_token) as attacker:
            exec_id = create(attacker)
            named = attacker.put(
                f"/api/v1/executions/{exec_id}/run",
                json={"run_id": f"pid:{victim.pid}:{exec_id}", "orchestrator": "local"},
            )
            assert named.status_code == 200
            cancelled = attacker.post(f"/api/v1/executions/{exec_id}/cancel", json={"grace": 0})
            # And the server's own process group (pid 0 is the caller's).
            itself = create(attacker)
            attacker.put(
                f"/api/v1/executions/{itself}/run",
                json={"run_id": f"pid:0:{itself}", "orchestrator": "local"},
            )
            attacker.post(f"/api/v1/executions/{itself}/cancel", json={"grace": 0})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(0.5)
        assert victim.poll() is None  # not signalled
        assert server.proc.poll() is None
        assert httpx.get(server.url + "/health", timeout=10).status_code == 200
    finally:
        victim.kill()
        victim.wait()


class FakeEngine:
    """A TCP port that stands in for a Docker engine: it notes every connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_the_server_asks_no_orchestrator_about_a_run_id_a_record_names(
    server: ServerProcess, write_token: str
) -> None:
    engine = FakeEngine()
    try:
        # An admin's docker stack; its engine here notes who calls it.
        with server.http(server.token("admin")) as admin:
            made = admin.post(
                "/api/v1/stacks",
                json={"name": "engine", "orchestrator": "docker", "artifact_store": server.store,
                      "registry": "registry.example.com/team", "journal": "env:JOBS_JOURNAL_URL",
                      "settings": {"docker_host": engine.url}},
            )  # fmt: skip
            assert made.status_code == 201, made.text
        registered = engine.connections  # (registering may check that it answers)
        # The attacker names someone's container as the run of their own execution,
        # queued long ago (so readers and the sweeper would ask about it), then cancels.
        container = "ab" * 32
        with server.http(write_token) as attacker:
            exec_id = create(
                attacker, stack="engine", orchestrator="docker", created_at=1.0, updated_at=1.0
            )
            attacker.put(
                f"/api/v1/executions/{exec_id}/run",
                json={"run_id": container, "orchestrator": "docker"},
            )
            listed = attacker.get("/api/v1/executions").json()
            shown = attacker.get(f"/api/v1/executions/{exec_id}").json()
            time.sleep(1.0)  # a few sweeps
            cancelled = attacker.post(f"/api/v1/executions/{exec_id}/cancel", json={"grace": 0})
        assert exec_id in [e["exec_id"] for e in listed]
        assert shown["status"] == "queued" and shown["error"] is None
        assert cancelled.json()["status"] == "cancelled"
        assert engine.connections == registered
    finally:
        engine.close()


def test_no_reader_copies_a_file_a_run_id_names_into_a_record(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    # A log file on the server's machine, and a run id that walks to it from the
    # local orchestrator's log folder.
    secret = tmp_path / "host-secret.log"
    secret.write_text("DB_PASSWORD=hunter2\n")
    logs = server.home / "logs"
    walk = os.path.relpath(str(secret.with_suffix("")), logs)
    with server.http(write_token) as attacker:
        exec_id = create(attacker, created_at=1.0, updated_at=1.0)
        attacker.put(
            f"/api/v1/executions/{exec_id}/run",
            json={"run_id": f"pid:4000000:{walk}", "orchestrator": "local"},
        )
        answers = [
            attacker.get("/api/v1/executions").text,
            attacker.get(f"/api/v1/executions/{exec_id}").text,
        ]
        time.sleep(1.0)  # a few sweeps
        answers.append(attacker.get(f"/api/v1/records/executions/{exec_id}").text)
    assert not any("hunter2" in a for a in answers)
    assert json.loads(answers[-1])["error"] is None
