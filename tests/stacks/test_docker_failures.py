"""`docker` past the happy path, as a user sees it: containers on the local Docker engine
running a stand-in image (tests/stacks/_stand_in.py) put in each state, read with
`kitaru executions get`; a cancel that kills the container; its output through
`kitaru executions logs --orchestrator`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kitaru._errors import ConfigurationError
from kitaru.journal import current_journal
from tests.conftest import kitaru_cli
from tests.stacks._queued import failed, get, queue, run_of, settled, until
from tests.stacks._services import fresh_database, need

pytestmark = pytest.mark.services

SERVICES = ("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE")


@pytest.fixture
def register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    env = need(*SERVICES, "KITARU_TEST_POSTGRES_URL")
    monkeypatch.setenv("KITARU_JOURNAL_URL", fresh_database())

    def register(*settings: str) -> None:
        registered = kitaru_cli(
            "stack", "register", "box",
            "--orchestrator", "docker",
            "--artifact-store", (tmp_path / "artifacts").as_uri(),
            "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
            *[a for s in settings for a in ("--set", s)],
        )  # fmt: skip
        assert registered.returncode == 0, registered

    return register


def _container(run_id: str) -> Any:
    import docker

    return docker.from_env().containers.get(run_id)


def _until(what: Callable[[], bool]) -> None:
    until(what, 60, "the container did not get there")


def test_a_running_container_leaves_the_execution_queued(
    register: Callable[..., None], image: str
) -> None:
    register("environment.STAND_IN=sleep")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    _until(lambda: _container(run_id).status == "running")
    view = settled(exec_id, timeout=8)
    assert (view["status"], view["error"]) == ("queued", None)
    _container(run_id).kill()


def test_a_container_that_exits_non_zero_fails_the_execution_with_its_code_and_log(
    register: Callable[..., None], image: str
) -> None:
    register("environment.STAND_IN=exit:3")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    error = failed(exec_id)
    head, _, tail = error.partition(" without starting the execution: ")
    assert head == f"the docker run {run_id} ended (failed, exit code 3)"
    assert sorted(tail.splitlines()) == [
        "exiting with 3",
        f"stand-in for kitaru run-execution {exec_id}",
    ]


def test_a_container_that_exits_0_without_taking_the_execution_fails_it(
    register: Callable[..., None], image: str
) -> None:
    register("environment.STAND_IN=exit:0")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    error = failed(exec_id)
    head, _, tail = error.partition(" without starting the execution: ")
    assert head == f"the docker run {run_id} ended (succeeded, exit code 0)"
    # Its log (stdout and stderr, in the engine's order).
    assert sorted(tail.splitlines()) == [
        "exiting with 0",
        f"stand-in for kitaru run-execution {exec_id}",
    ]


def test_an_image_that_cannot_be_pulled_fails_at_submit_and_the_execution_says_so(
    register: Callable[..., None], image: str
) -> None:
    register()
    missing = image.rsplit(":", 1)[0] + "-missing:nope"
    with pytest.raises(ConfigurationError, match="the docker orchestrator could not start"):
        queue("box", missing)
    (listed,) = kitaru_cli("executions", "list", "--json").json()
    view = get(listed["exec_id"])
    assert view["status"] == "failed", view
    assert view["error"].startswith("submitting to the docker orchestrator failed: ")
    assert "-missing" in view["error"]


def test_a_container_killed_from_outside_fails_the_execution_with_its_signal_exit(
    register: Callable[..., None], image: str
) -> None:
    register("environment.STAND_IN=sleep")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    _until(lambda: _container(run_id).status == "running")
    _container(run_id).kill()
    error = failed(exec_id)
    assert error.startswith(f"the docker run {run_id} ended (failed, exit code 137)")


def test_a_container_over_its_memory_limit_fails_the_execution_saying_oom(
    register: Callable[..., None], image: str
) -> None:
    register("environment.STAND_IN=oom", "memory=64m")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    error = failed(exec_id)
    assert error.startswith(f"the docker run {run_id} ended (failed, exit code 137: OOM killed)"), (
        error
    )


def test_cancel_kills_the_container(register: Callable[..., None], image: str) -> None:
    register("environment.STAND_IN=sleep")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    _until(lambda: _container(run_id).status == "running")
    cancelled = kitaru_cli("executions", "cancel", exec_id)
    assert cancelled.returncode == 0, cancelled
    assert get(exec_id)["status"] == "cancelled"
    _until(lambda: _container(run_id).status == "exited")


def test_a_removed_container_fails_the_execution_as_gone(
    register: Callable[..., None], image: str
) -> None:
    # The engine's events show it removed a container labelled with the execution.
    register("environment.STAND_IN=sleep")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    _container(run_id).remove(force=True)
    view = settled(exec_id)
    assert (view["status"], view["error"]) == (
        "failed",
        f"the docker run {run_id} is gone (missing: the container no longer exists) "
        "without starting the execution",
    )


def test_a_container_id_this_engine_never_ran_leaves_the_execution_queued(
    register: Callable[..., None], image: str
) -> None:
    # Another machine's container, say: unknown here is not gone.
    register("environment.STAND_IN=sleep")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    _container(run_id).kill()
    current_journal().set_run_id(exec_id, "0123456789ab" * 5 + "cdef", "docker")
    view = settled(exec_id, timeout=8)
    assert (view["status"], view["error"]) == ("queued", None)


def test_logs_come_from_the_container(register: Callable[..., None], image: str) -> None:
    register("environment.STAND_IN=env:STAND_IN")
    exec_id = queue("box", image)
    run_id = run_of(exec_id)
    _until(lambda: _container(run_id).status == "exited")
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    assert logs.stdout == (
        f"── docker run {run_id} ──\nstand-in for kitaru run-execution {exec_id}\n"
        "STAND_IN=env:STAND_IN\n"
    )
