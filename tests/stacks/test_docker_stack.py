"""The `docker` orchestrator end to end on a real Docker engine: the image is built with
the project's uv lock and kitaru's wheels, pushed to a local registry, and every run of an
execution is a new container, with the journal on PostgreSQL and artifacts on S3 (moto).
One image is built for the whole module (and reused by the AWS Batch tests: same hash)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli, run_python
from tests.stacks._services import extra_ca, fresh_bucket, fresh_database, need, write_project

SERVICES = (
    "DOCKER_HOST",
    "KITARU_TEST_REGISTRY",
    "KITARU_TEST_BASE_IMAGE",
    "KITARU_TEST_POSTGRES_URL",
    "KITARU_TEST_MOTO_URL",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("stack-project"))


@pytest.fixture
def docker_stack(monkeypatch: pytest.MonkeyPatch, project: Path) -> Iterator[dict[str, Any]]:
    env = need(*SERVICES)
    moto = env["KITARU_TEST_MOTO_URL"]
    journal = fresh_database()
    bucket = fresh_bucket(moto)
    for key, value in {
        "KITARU_JOURNAL_URL": journal,
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    registered = kitaru_cli(
        "stack",
        "register",
        "box",
        "--orchestrator",
        "docker",
        "--artifact-store",
        f"s3://{bucket}/runs",
        "--registry",
        f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set",
        f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set",
        f'ca_certificates=["{extra_ca()}"]',
        "--set",
        f"environment.AWS_ENDPOINT_URL={moto}",
        "--set",
        "environment.AWS_DEFAULT_REGION=us-east-1",
        "--set",
        "environment.KITARU_LEASE_SECONDS=3",
        "--set",
        "secret_environment.AWS_ACCESS_KEY_ID=env:AWS_ACCESS_KEY_ID",
        "--set",
        "secret_environment.AWS_SECRET_ACCESS_KEY=env:AWS_SECRET_ACCESS_KEY",
        "--use",
    )
    assert registered.returncode == 0, registered
    yield {"journal": journal, "bucket": bucket, "moto": moto, "project": project}


def get(exec_id: str) -> dict[str, Any]:
    view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
    return view


def until(exec_id: str, statuses: set[str], timeout: float = 240) -> dict[str, Any]:
    """Poll until the status is one of `statuses` or it stops changing by itself."""
    deadline = time.monotonic() + timeout
    while True:
        view = get(exec_id)
        settled = view["status"] not in ("queued", "running")
        if view["status"] in statuses or settled or time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def test_checkpoints_crash_resume_and_wait_each_in_a_new_container(
    docker_stack: dict[str, Any],
) -> None:
    import boto3
    import docker

    project = docker_stack["project"]
    client = docker.from_env()
    started = run_python(project / "agent.py", "kites", "wait", "6", cwd=project, timeout=1200)
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]

    # Run 1: `fetch` commits (its 40 KB output goes to S3), then the container is killed
    # in the middle of `draft`, as a platform would (OOM, node lost). Its lease (3 s here)
    # runs out and the execution shows as crashed.
    deadline = time.monotonic() + 240
    view = get(exec_id)
    while not view["checkpoints"] and time.monotonic() < deadline:
        time.sleep(0.3)
        view = get(exec_id)
    assert view["status"] == "running", view
    client.containers.get(view["run_id"]).kill()
    view = until(exec_id, {"crashed"})
    assert view["status"] == "crashed", view
    assert (view["stack"], view["orchestrator"]) == ("box", "docker")
    assert view["metadata"]["image"].startswith(os.environ["KITARU_TEST_REGISTRY"] + "/kitaru/")
    assert "@sha256:" in view["metadata"]["image"]
    assert [(c["key"], c["status"]) for c in view["checkpoints"]] == [("fetch", "completed")]
    fetch_uri = view["checkpoints"][0]["output"]["uri"]
    assert fetch_uri.startswith(f"s3://{docker_stack['bucket']}/runs/")
    s3 = boto3.client("s3", endpoint_url=docker_stack["moto"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=docker_stack["bucket"])["Contents"]]
    assert any(fetch_uri.endswith(k) for k in keys)
    runs = [view["run_id"]]

    # Resumed from the host: a new container reads `fetch` back and stops at the wait.
    resumed = kitaru_cli("executions", "resume", exec_id, "--json")
    assert resumed.returncode == 0, resumed
    view = until(exec_id, {"waiting"})
    assert view["status"] == "waiting", view
    assert [(c["key"], c["origin"]) for c in view["checkpoints"]] == [
        ("fetch", "journal"),
        ("draft", "ran"),
    ]
    runs.append(view["run_id"])

    # Answered from the host: a third container continues after the wait.
    answered = kitaru_cli("executions", "input", exec_id, "approve", "true", "--json")
    assert answered.returncode == 0, answered
    view = until(exec_id, {"completed"})
    assert view["status"] == "completed", view
    assert view["result"]["draft"] == "FACTS ABOUT KITES. FAC"
    assert view["result"]["approved"] is True
    assert view["result"]["host"].startswith(f"docker-{exec_id}-")
    assert view["runs"] == 3
    runs.append(view["run_id"])
    assert len(set(runs)) == 3

    containers = client.containers.list(all=True, filters={"label": f"kitaru.exec_id={exec_id}"})
    assert sorted(c.id for c in containers) == sorted(runs)
    codes = sorted(c.attrs["State"]["ExitCode"] for c in containers)
    assert codes == [0, 0, 137]  # the killed one, then two that ran to a stop

    # The extra CA certificate (ca_certificates) is trusted inside the image.
    installed = client.containers.run(
        view["metadata"]["image"],
        ["cat", "/usr/local/share/ca-certificates/extra-0.crt"],
        network_mode="host",
        remove=True,
    )
    assert installed.decode().strip() == Path(extra_ca()).read_text().strip()

    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert f"kitaru: execution {exec_id} completed" in logs.stdout, logs
    listing = kitaru_cli("executions", "list")
    assert "box (docker)" in listing.stdout


def test_same_project_reuses_the_image_and_cancel_stops_the_container(
    docker_stack: dict[str, Any],
) -> None:
    import docker

    project = docker_stack["project"]
    before = {i.id for i in docker.from_env().images.list()}
    first = run_python(project / "agent.py", "a", "no-wait", cwd=project, timeout=1200)
    second = run_python(project / "agent.py", "b", "no-wait", "60", cwd=project, timeout=1200)
    assert first.returncode == 0 and second.returncode == 0, (first, second)
    one, two = (p.stdout.strip().splitlines()[-1] for p in (first, second))
    assert get(one)["metadata"]["image"] == get(two)["metadata"]["image"]
    assert {i.id for i in docker.from_env().images.list()} == before  # nothing rebuilt
    view = until(one, {"completed"})
    assert view["status"] == "completed" and view["result"]["approved"] is True

    # A running execution (inside a 60 s checkpoint) is stopped on the engine.
    view = until(two, {"running"})
    assert view["status"] == "running", view
    cancelled = kitaru_cli("executions", "cancel", two, "--grace", "1", "--json")
    assert cancelled.returncode == 0, cancelled
    assert cancelled.json()["status"] == "cancelled"
    container = docker.from_env().containers.get(view["run_id"])
    deadline = time.monotonic() + 30
    while container.status == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        container.reload()
    assert container.status == "exited"
    assert kitaru_cli("executions", "resume", two).returncode == 2


def test_image_build_failure_shows_the_failing_step(
    docker_stack: dict[str, Any], tmp_path: Path
) -> None:
    import docker

    client = docker.from_env()
    broken = "kitaru-test/python-without-venv:1"
    try:
        client.images.get(broken)
    except docker.errors.ImageNotFound:
        base = need("KITARU_TEST_BASE_IMAGE")["KITARU_TEST_BASE_IMAGE"]
        container = client.containers.run(
            base,
            ["sh", "-c", "rm -rf /usr/lib/python3.11/venv /usr/lib/python3.11/ensurepip"],
            detach=True,
            network_mode="host",
        )
        container.wait()
        container.commit(*broken.split(":"))
        container.remove()
    kitaru_cli(
        "stack",
        "register",
        "broken",
        "-o",
        "docker",
        "-a",
        f"s3://{docker_stack['bucket']}/broken",
        "--set",
        f"base_image={broken}",
        "--use",
    )
    project = write_project(tmp_path / "other")
    result = run_python(project / "agent.py", "x", cwd=project, timeout=1200)
    assert result.returncode == 1
    assert "building the image" in result.stderr
    assert "output of the failing step" in result.stderr
    assert "python3 -m venv" in result.stderr  # the step
    assert "venv" in result.stderr.split("output of the failing step")[1]
    assert kitaru_cli("executions", "list", "--json").json() == []
