"""`kitaru server build-image` on a real Docker engine: the server image is built through
the docker stack's builder from the debootstrapped base image, pushed to the local
registry, and run with host networking against the shared PostgreSQL journal; a second
build reuses it; stacks that cannot build it say what to do."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import kitaru
from tests.conftest import kitaru_cli, run_python, write_script
from tests.stacks._services import extra_ca, fresh_database, need

SERVICES = ("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE")


def _register(name: str, *options: str) -> None:
    env = need(*SERVICES)
    registered = kitaru_cli(
        "stack", "register", name, "--orchestrator", "docker",
        "--artifact-store", "file:///tmp/kitaru-server-image-test",
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set", f'ca_certificates=["{extra_ca()}"]',
        *options,
    )  # fmt: skip
    assert registered.returncode == 0, registered


@pytest.fixture
def journal(monkeypatch: pytest.MonkeyPatch) -> str:
    url = fresh_database()
    monkeypatch.setenv("KITARU_JOURNAL_URL", url)
    return url


@pytest.fixture
def running() -> Iterator[list[Any]]:
    """Containers the test started, removed at the end whatever happens."""
    started: list[Any] = []
    yield started
    for container in started:
        container.remove(force=True)


def _listening(container: Any, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        logs = container.logs().decode(errors="replace")
        found = re.search(r"listening on (http://\S+)", logs)
        if found:
            return found.group(1)
        if container.status == "exited" or time.monotonic() > deadline:
            pytest.fail(f"the server container did not start ({container.status}):\n{logs}")
        time.sleep(0.2)


def test_the_server_image_is_built_pushed_reused_and_serves_the_journal(
    journal: str, tmp_path: Path, running: list[Any]
) -> None:
    import docker

    env = need(*SERVICES, "KITARU_TEST_POSTGRES_URL")
    registry = f"{env['KITARU_TEST_REGISTRY']}/kitaru"
    _register("box", "--registry", registry)
    # A repository of its own: the first build really builds (the engine's layer cache
    # keeps it quick), whatever earlier runs pushed.
    repository = f"kitaru-server-{uuid.uuid4().hex[:8]}"
    args = ("server", "build-image", "--stack", "box", "--repository", repository)

    built = kitaru_cli(*args, "--extras", "postgres", "--tag", "edge", "--json", timeout=1800)
    assert built.returncode == 0, built
    view = built.json()
    full = f"{registry}/{repository}"
    assert view["repository"] == full and view["reused"] is False
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", view["digest"])
    assert view["image"] == f"{full}@{view['digest']}"
    assert view["extras"] == ["server", "postgres"]
    assert view["tags"] == [f"{full}:edge"]
    assert view["helm_values"] == {"image.repository": full, "image.digest": view["digest"]}
    assert view["helm_set"] == f"--set image.repository={full} --set image.digest={view['digest']}"
    for step in ("resolving the image's requirements", f"building {full}:", "pushing"):
        assert step in built.stderr, built.stderr

    client = docker.from_env()
    for ref in (view["content_tag"], f"{full}:edge"):
        assert client.images.get_registry_data(ref).id == view["digest"]
    config = client.images.get(view["image"]).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["python", "-m", "kitaru", "server", "start"]
    assert config["Cmd"] == ["--host", "0.0.0.0", "--port", "8080"]
    assert "8080/tcp" in config["ExposedPorts"]

    # The same inputs again (extras in another order): the pushed image, nothing built.
    # (Only this repository's images: other work may share the engine.)
    before = {i.id for i in client.images.list(name=full)}
    assert before
    again = kitaru_cli(*args, "--extras", "postgres,server", timeout=1800)
    assert again.returncode == 0, again
    assert f"image   {view['image']}" in again.stdout
    assert "reused: kitaru, the extras, the base image and the recipe are unchanged" in again.stdout
    assert f"helm    {view['helm_set']}" in again.stdout
    assert "already there (same inputs)" in again.stderr
    assert "building" not in again.stderr.replace("building the server image", "")
    assert "pushing" not in again.stderr
    assert {i.id for i in client.images.list(name=full)} == before

    # An execution recorded on this machine, in the journal the server will serve.
    script = write_script(
        tmp_path / "hello.py",
        """
        import kitaru

        @kitaru.checkpoint
        def greet(name: str) -> str:
            return f"hello {name}"

        @kitaru.flow
        def hello(name: str) -> str:
            return greet(name)

        if __name__ == "__main__":
            print(hello.run("image").exec_id)
        """,
    )
    ran = run_python(script, cwd=tmp_path)
    assert ran.returncode == 0, ran
    exec_id = ran.stdout.strip().splitlines()[-1]
    token = kitaru_cli(
        "server", "token", "create", "--scope", "read", "--journal", journal, "--json"
    ).json()["token"]

    # The image's own arguments replaced, as the chart does: a free port on loopback.
    container = client.containers.run(
        view["image"],
        ["--host", "127.0.0.1", "--port", "0", "--artifact-store", "file:///tmp/kitaru/store"],
        environment={"KITARU_JOURNAL_URL": journal},
        network_mode="host",
        detach=True,
        labels={"kitaru.test": "server-image"},
    )
    running.append(container)
    url = _listening(container)
    health = httpx.get(f"{url}/health", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "version": kitaru.__version__}
    assert httpx.get(f"{url}/health/ready", timeout=10).status_code == 200
    assert httpx.get(f"{url}/api/v1/executions", timeout=10).status_code == 401
    listed = httpx.get(
        f"{url}/api/v1/executions", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    assert [(e["exec_id"], e["status"]) for e in listed.json()] == [(exec_id, "completed")]
    whoami = container.exec_run(["id", "-u"])
    assert whoami.exit_code == 0 and whoami.output.decode().strip() == "10001"


def test_stacks_that_cannot_build_it_say_what_to_do(journal: str) -> None:
    env = need(*SERVICES)
    local = kitaru_cli("server", "build-image", "--stack", "local")
    assert local.returncode == 2
    assert "error: stack 'local' (local) builds no images" in local.stderr, local
    assert "kitaru stack register NAME --orchestrator docker" in local.stderr

    _register("plain")
    plain = kitaru_cli("server", "build-image", "--stack", "plain")
    assert plain.returncode == 2
    assert "error: stack 'plain' has no container registry" in plain.stderr, plain
    assert "kitaru stack register plain --registry HOST[:PORT]/PATH --replace" in plain.stderr

    registry = f"{env['KITARU_TEST_REGISTRY']}/kitaru"
    _register("box", "--registry", registry)
    odd = kitaru_cli("server", "build-image", "--stack", "box", "--extras", "server,mysql")
    assert odd.returncode == 2
    assert "--extras: mysql cannot go into the server image" in odd.stderr, odd
    bad_tag = kitaru_cli("server", "build-image", "--stack", "box", "--tag", "-x")
    assert bad_tag.returncode == 2 and "--tag '-x' is not a valid image tag" in bad_tag.stderr

    _register("down", "--registry", "127.0.0.1:9/kitaru", "--no-check")
    down = kitaru_cli("server", "build-image", "--stack", "down")
    assert down.returncode == 1
    assert "error: the registry of stack 'down', 127.0.0.1:9/kitaru cannot be reached" in (
        down.stderr
    ), down

    _register(
        "noengine", "--registry", registry, "--set", "docker_host=unix:///nonexistent.sock",
        "--no-check",
    )  # fmt: skip
    noengine = kitaru_cli("server", "build-image", "--stack", "noengine")
    assert noengine.returncode == 1
    assert "cannot reach the Docker engine that builds images at unix:///nonexistent.sock" in (
        noengine.stderr
    ), noengine
    assert "start Docker or set DOCKER_HOST" in noengine.stderr
    assert "resolving" not in noengine.stderr  # told before any slow work
