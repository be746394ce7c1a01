"""Attacks on the people who use a server, replayed against a real `kitaru server start`
process on SQLite: records written with a write or a leaked run token, crafted so that a
developer's own `kitaru` command (or KitaruClient) on their machine runs the attacker's
code, hands over their token, or copies their files into a record everyone can read.

A client that works through a server trusts no code location, interpreter, run id or
type a record names: each test is the attacker's setup, the developer's ordinary
command, then the effect that must not happen.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_script
from tests.server.conftest import Client
from tests.server.hostile import create, run_token, sqlite_server
from tests.server_process import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from sqlite_server(tmp_path_factory, "hostile-records", "--sweep-interval", "0")


@pytest.fixture(scope="module")
def write_token(server: ServerProcess) -> str:
    return server.token("write", name="attacker")


@pytest.fixture
def developer(server: ServerProcess, tmp_path: Path) -> Client:
    """A developer's machine: their own admin token, their own KITARU_HOME."""
    return Client(server, server.token("admin", name="developer"), tmp_path / "dev-home")


def test_loading_an_artifact_imports_no_module_its_record_names(
    server: ServerProcess, write_token: str, developer: Client, tmp_path: Path
) -> None:
    # A leaked run token stores a "pydantic" artifact whose type names a module with
    # side effects on import (here one of the attacker's choosing on the path).
    marker = tmp_path / "imported"
    planted = write_script(
        tmp_path / "site" / "side_effect.py", f"open({str(marker)!r}, 'w')\nclass x: ...\n"
    )
    with server.http(write_token) as http:
        exec_id = create(http)
    data = b'{"total": 3}'
    artifact = {
        "artifact_id": "ka_" + os.urandom(14).hex(), "exec_id": exec_id, "name": "report",
        "version": 1, "producer": "save", "producer_key": None, "type_ref": "side_effect:x",
        "serializer": "pydantic", "content_hash": hashlib.sha256(data).hexdigest(),
        "size": len(data), "uri": None, "created_at": time.time(),
        "inline": base64.b64encode(data).decode(),
    }  # fmt: skip
    with server.http(run_token(server, exec_id)) as attacker:
        stored = attacker.post(
            f"/api/v1/runner/executions/{exec_id}/artifacts", json={"artifact": artifact}
        )
        assert stored.status_code == 200, stored.text

    # The developer loads it, the module being importable on their machine.
    loaded = developer.python(
        write_script(
            tmp_path / "load.py",
            "import json, sys\nfrom kitaru.client import KitaruClient\n"
            f"value = KitaruClient().artifacts.get({artifact['artifact_id']!r}).load()\n"
            "print(json.dumps({'value': value, 'imported': 'side_effect' in sys.modules}))\n",
        ),
        env={"PYTHONPATH": str(planted.parent)},
    )
    assert loaded.returncode == 0, loaded.stderr
    # The plain JSON value; the module was not imported.
    assert loaded.stdout.strip().splitlines()[-1] == '{"value": {"total": 3}, "imported": false}'
    assert not marker.exists()


def test_a_developers_listing_copies_none_of_their_files_into_a_record(
    server: ServerProcess, write_token: str, developer: Client, tmp_path: Path
) -> None:
    # The developer's machine: a log folder (they ran something with --detach or on a
    # subprocess stack), their own execution's log, and a secret in some other log.
    logs = developer.home / "logs"
    logs.mkdir(parents=True)
    secret = tmp_path / "dev-secret.log"
    secret.write_text("AWS_SECRET_ACCESS_KEY=pretend-1\n")
    walk = os.path.relpath(str(secret.with_suffix("")), logs)
    long_ago = time.time() - 600
    with server.http(write_token) as attacker:
        walked = create(attacker, created_at=long_ago, updated_at=long_ago)
        theirs = create(attacker, created_at=long_ago, updated_at=long_ago)
        (logs / f"{theirs}.log").write_text("AWS_SECRET_ACCESS_KEY=pretend-2\n")
        for exec_id, run_id in ((walked, f"pid:4000000:{walk}"), (theirs, f"pid:4000000:{theirs}")):
            named = attacker.put(
                f"/api/v1/executions/{exec_id}/run",
                json={"run_id": run_id, "orchestrator": "local"},
            )
            assert named.status_code == 200

    # The developer lists and inspects executions, with their own token.
    listed = developer.cli("executions", "list")
    shown = developer.cli("executions", "get", theirs)
    logs_asked = developer.cli("executions", "logs", theirs, "--orchestrator")
    assert listed.returncode == 0 and shown.returncode == 0, listed.stderr + shown.stderr
    assert logs_asked.returncode == 2 and "was not submitted from here" in logs_asked.stderr

    with server.http(write_token) as attacker:
        records = [attacker.get(f"/api/v1/records/executions/{e}").json() for e in (walked, theirs)]
    assert [(r["status"], r["error"]) for r in records] == [("queued", None), ("queued", None)]
    assert "pretend" not in listed.stdout + shown.stdout + logs_asked.stdout + logs_asked.stderr


def test_a_developers_cancel_signals_no_process_a_record_names(
    server: ServerProcess, write_token: str, developer: Client
) -> None:
    from kitaru import _lease

    # A process of the developer's, and a record whose owner names it: this host, its
    # pid and (for a look of life) its start time.
    victim = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        time.sleep(0.2)
        owner = f"{_lease._HOST}:{victim.pid}:{_lease._start_time(victim.pid)}:fake"
        with server.http(write_token) as attacker:
            exec_id = create(attacker, status="running", owner=owner, lease_until=time.time() + 600)
        cancelled = developer.cli("executions", "cancel", exec_id, "--grace", "1")
        assert cancelled.returncode == 0, cancelled.stderr
        time.sleep(0.3)
        assert victim.poll() is None  # neither SIGUSR1 nor SIGKILL reached it
    finally:
        victim.kill()
        victim.wait()


# -- code a record names --------------------------------------------------------------


def _planted(server: ServerProcess, exec_id: str, name: str, payload: str) -> Path:
    """A file in the server's artifact store, where the attacker's uploads land (written
    directly: the store API refuses names Python would import, see the test below)."""
    path = Path(server.store.removeprefix("file://")) / exec_id / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(payload)
    return path


def test_a_developer_resuming_a_ready_execution_runs_no_uploaded_file(
    server: ServerProcess, write_token: str, developer: Client, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned-on-the-developer"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    exec_id = "kx_" + os.urandom(14).hex()
    with server.http(write_token) as attacker:
        as_python = attacker.put(
            f"/api/v1/store/objects/{exec_id}/pwn.py",
            params={"root": server.store},
            content=payload.encode(),
        )
        uploaded = attacker.put(
            f"/api/v1/store/objects/{exec_id}/ka_report",
            params={"root": server.store},
            content=payload.encode(),
        )
        path = uploaded.json()["uri"].removeprefix("file://")
        create(
            attacker, exec_id, status="failed", flow_ref="__main__:report", flow_file=path,
            argv=[path],
        )  # fmt: skip
        ready = attacker.post(f"/api/v1/executions/{exec_id}/resume").json()
    assert as_python.status_code == 422 and "Python would import" in as_python.text
    assert ready["status"] == "queued"

    # The developer follows the UI's instruction, from a folder that holds the store.
    resumed = developer.cli(
        *ready["ready"]["command"].split()[1:], cwd=Path(server.store[7:]).parent
    )
    assert resumed.returncode == 2, resumed.stderr
    assert "where files arrive from outside" in resumed.stderr and "--project" in resumed.stderr
    # A file anywhere else outside their project is refused the same way.
    elsewhere = write_script(tmp_path / "elsewhere" / "report.py", payload)
    with server.http(write_token) as attacker:
        other = create(
            attacker, status="failed", flow_ref="__main__:report", flow_file=str(elsewhere)
        )
    project = tmp_path / "my-project"
    project.mkdir()
    outside = developer.cli("executions", "resume", other, cwd=project)
    assert outside.returncode == 2 and "outside this project" in outside.stderr
    time.sleep(0.5)
    assert not marker.exists()


def test_a_developer_resuming_runs_no_kitaru_package_from_a_record_s_directory(
    server: ServerProcess, write_token: str, developer: Client, tmp_path: Path
) -> None:
    stolen = tmp_path / "stolen-token"
    steal = f"import os\nopen({str(stolen)!r}, 'w').write(os.environ.get('KITARU_API_TOKEN', ''))\n"
    exec_id = "kx_" + os.urandom(14).hex()
    with server.http(write_token) as attacker:
        refused = attacker.put(
            f"/api/v1/store/objects/{exec_id}/kitaru/__main__.py",
            params={"root": server.store},
            content=steal.encode(),
        )
    assert refused.status_code == 422
    # Had it landed (a store shared another way): a `python -m kitaru` started in that
    # folder, for a resubmitted run on the local stack, would run it with the token.
    folder = _planted(server, exec_id, "kitaru/__main__.py", steal).parent.parent
    _planted(server, exec_id, "kitaru/__init__.py", "")
    with server.http(write_token) as attacker:
        create(
            attacker, exec_id, status="failed", flow_ref="app:report",
            project_root=str(folder), run_id=f"pid:2:{exec_id}", orchestrator="local",
        )  # fmt: skip
    resumed = developer.cli("executions", "resume", exec_id, cwd=Path(server.store[7:]).parent)
    assert resumed.returncode == 2, resumed.stderr
    assert "the project directory" in resumed.stderr
    time.sleep(1.0)
    assert not stolen.exists()


def test_a_developer_resuming_in_the_background_runs_no_interpreter_a_record_names(
    server: ServerProcess, write_token: str, developer: Client, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-the-record-s-python"
    fake_python = tmp_path / "bin" / "python"
    fake_python.parent.mkdir()
    fake_python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake_python.chmod(0o755)
    with server.http(write_token) as attacker:
        exec_id = create(
            attacker, status="failed", flow_ref="__main__:report", python=str(fake_python)
        )
    project = tmp_path / "my-project"
    project.mkdir()
    detached = developer.cli("executions", "resume", exec_id, "--detach", cwd=project)
    assert detached.returncode in (0, 1), detached.stderr  # (it shows the record: failed)
    time.sleep(3.0)  # the background process starts, and fails to load the flow
    assert not marker.exists()


def test_a_developer_resuming_starts_no_image_a_record_names(
    server: ServerProcess, write_token: str, developer: Client, tmp_path: Path
) -> None:
    from tests.server.test_attacks_runs import FakeEngine

    engine = FakeEngine()
    try:
        with server.http(server.token("admin")) as admin:
            made = admin.post(
                "/api/v1/stacks",
                json={"name": "team-docker", "orchestrator": "docker",
                      "artifact_store": server.store, "journal": "env:JOBS_JOURNAL_URL",
                      "registry": "registry.example.com/team",
                      "settings": {"docker_host": engine.url,
                                   "secret_environment": {"OPENAI_API_KEY": "env:OPENAI_API_KEY"}}},
            )  # fmt: skip
            assert made.status_code == 201, made.text
        registered = engine.connections
        with server.http(write_token) as attacker:
            exec_id = create(
                attacker, status="failed", stack="team-docker", orchestrator="docker",
                run_id="c0ffee", metadata={"image": "attacker.example/steal-secrets:latest"},
            )  # fmt: skip
        resumed = developer.cli("executions", "resume", exec_id, cwd=tmp_path)
        assert resumed.returncode == 2, resumed.stderr
        assert "not in the registry of stack 'team-docker'" in resumed.stderr
        assert engine.connections == registered  # nothing was started
    finally:
        engine.close()
