"""Containers started for a server's executions reach the server, never the database: a
client that knows only KITARU_SERVER_URL and a write token registers a docker stack and
runs examples/stack_agent on it (a real Docker engine, the server on PostgreSQL).

The first container gets the client's server URL and token; the wait is answered through
a webhook URL, the server re-submits the execution, and the second container gets a
token the server minted for that run, which a sweep revokes once the execution has
completed. Artifacts go through the server into its store on this machine, which no
container can see."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from kitaru.journal import open_journal
from kitaru.journal._tokens import TokenRows
from kitaru.server._sweeper import Sweeper
from tests.conftest import kitaru_cli, run_python
from tests.server.conftest import running_server
from tests.server_process import ServerProcess
from tests.stacks._services import extra_ca, need, write_project

SERVICES = ("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    need(*SERVICES, "KITARU_TEST_POSTGRES_URL")
    # No sweeper thread: the test sweeps when it means to (a run token must not be
    # revoked between two of its checks).
    yield from running_server(tmp_path_factory, "--sweep-interval", "0")


def container_env(run_id: str) -> dict[str, str]:
    import docker

    attrs = docker.from_env().containers.get(run_id).attrs
    return dict(item.partition("=")[::2] for item in attrs["Config"]["Env"])


def assert_no_journal(env: dict[str, str], server: ServerProcess) -> None:
    assert "KITARU_JOURNAL_URL" not in env, env
    assert not [v for v in env.values() if "postgres" in v or server.journal_url in v], env
    assert env["KITARU_SERVER_URL"] == server.url
    assert env["KITARU_ARTIFACT_STORE"] == server.store


def test_a_flow_runs_answers_and_completes_in_containers_through_the_server(
    server: ServerProcess, write_token: str, tmp_path: Path
) -> None:
    env = need(*SERVICES)
    client = server.client_env(write_token, tmp_path / "client-home")
    # Stacks are an admin's to register; the flow runs with a write token.
    admin = server.client_env(server.token("admin"), tmp_path / "client-home")
    registered = kitaru_cli(
        "stack", "register", "box",
        "--orchestrator", "docker",
        "--artifact-store", server.store,  # the server's own store: reached through it
        "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set", f'ca_certificates=["{extra_ca()}"]',
        "--use",
        env=admin,
    )  # fmt: skip
    assert registered.returncode == 0, registered

    project = write_project(tmp_path / "agent")
    started = run_python(project / "agent.py", "kites", cwd=project, env=client, timeout=1200)
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]

    view = server.wait_for(write_token, exec_id, {"waiting", "failed", "completed"}, 300)
    assert view["status"] == "waiting", view
    assert "server_url" not in view["metadata"]  # the server's URL comes from its config
    assert "@sha256:" in view["metadata"]["image"]
    first = container_env(view["run_id"])
    assert_no_journal(first, server)
    assert first["KITARU_API_TOKEN"] == write_token  # the client's own, read where it ran

    # `fetch` returned ~40 KB: its bytes went through the server into the server's store,
    # a directory on this machine that the container has no access to.
    fetch = view["checkpoints"][0]["output"]
    assert fetch["uri"].startswith(server.store + "/")
    assert Path(urlsplit(fetch["uri"]).path).stat().st_size == fetch["size"] > 16 * 1024

    # Answered through a webhook URL: the server re-submits the execution itself.
    with server.http(write_token) as http:
        hook = http.post(f"/api/v1/executions/{exec_id}/waits/approve/webhook", json={})
        assert hook.status_code == 200, hook.text
    answered = httpx.post(hook.json()["url"], json=True, timeout=60)
    assert answered.status_code == 202, answered.text

    view = server.wait_for(write_token, exec_id, {"completed", "failed"}, 300)
    assert view["status"] == "completed", (view, server.log())
    assert view["result"]["approved"] is True
    assert view["result"]["draft"] == "FACTS ABOUT KITES. FAC"
    assert view["runs"] == 2
    assert [(c["key"], c["origin"]) for c in view["checkpoints"]] == [
        ("fetch", "journal"),
        ("draft", "journal"),
    ]
    second = container_env(view["run_id"])
    assert_no_journal(second, server)
    run_token = second["KITARU_API_TOKEN"]
    assert run_token != write_token

    journal = open_journal(server.journal_url)
    assert isinstance(journal, TokenRows)
    minted = journal.get_token(run_token.removeprefix("kt_").partition("_")[0])
    assert minted is not None
    assert (minted.name, minted.scope) == (f"run-{exec_id}", "run")
    # The run finished the execution: its token was revoked then, and the server refuses it
    # (within the second for which a server keeps a verified token); a sweep changes nothing.
    assert minted.revoked_at is not None
    Sweeper(journal, interval=0).sweep()
    revoked = journal.get_token(minted.token_id)
    assert revoked is not None and revoked.revoked_at == minted.revoked_at
    assert refused_soon(server, run_token)
    with server.http(write_token) as http:
        assert http.get("/api/v1/info").status_code == 200  # the client's token is untouched


def refused_soon(server: ServerProcess, token: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    with server.http(token) as http:
        while True:
            status: Any = http.get("/api/v1/info").status_code
            if status == 401 or time.monotonic() > deadline:
                return bool(status == 401)
            time.sleep(0.2)
