"""`azure_container_apps` past the happy path, as a user sees it: each status Container
Apps reports for a job execution, read with `kitaru executions get` (with the reasons
from the environment's system logs); a cancel that stops the execution on the platform;
the run's output through `kitaru executions logs --orchestrator` (Log Analytics). The
platform is tests/stacks/_fake_container_apps.py behind the official client library;
the journal, the stack and the CLI are kitaru's own, in their own processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli
from tests.stacks._fake_container_apps import WORKSPACE, FakeContainerApps
from tests.stacks._queued import failed, get, queue, run_of, still_queued_after_asking
from tests.stacks._recorder import Recorder, recording

ENV_ID = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env"


def _register(api: Recorder, tmp_path: Path, *extra: str) -> Any:
    return kitaru_cli(
        "stack", "register", "aca",
        "--orchestrator", "azure_container_apps",
        # Containers would read the journal URL from Key Vault; here it is SQLite.
        "--journal", "secret:https://kv.vault.azure.net/secrets/journal",
        "--artifact-store", (tmp_path / "artifacts").as_uri(),
        "--registry", f"{api.url.removeprefix('http://')}/kitaru",
        "--set", "subscription_id=sub",
        "--set", "resource_group=rg",
        "--set", f"environment_id={ENV_ID}",
        "--set", "location=westeurope",
        "--set", f"base_url={api.url}",
        *extra,
    )  # fmt: skip


@pytest.fixture
def aca(tmp_path: Path, sqlite_journal: str) -> Iterator[tuple[FakeContainerApps, Recorder]]:
    fake = FakeContainerApps()
    with recording(fake) as api:
        registered = _register(
            api,
            tmp_path,
            "--set", f"log_analytics_workspace_id={WORKSPACE}",
            "--set", f"log_analytics_endpoint={api.url}",
        )  # fmt: skip
        assert registered.returncode == 0, registered
        yield fake, api


def _asked(api: Recorder, run_id: str) -> Callable[[], bool]:
    job, _, execution = run_id.partition("/")
    return lambda: any(
        c.method == "GET" and c.path.endswith(f"/jobs/{job}/executions/{execution}")
        for c in api.calls
    )


@pytest.mark.parametrize("status", ["Processing", "Running"])
def test_a_run_not_yet_ended_leaves_the_execution_queued(
    aca: tuple[FakeContainerApps, Recorder], status: str
) -> None:
    fake, api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    fake.set_status(run_id, status)
    view = still_queued_after_asking(exec_id, _asked(api, run_id))
    assert (view["status"], view["error"]) == ("queued", None)
    assert view["orchestrator"] == "azure_container_apps"


def test_a_failed_execution_fails_with_the_reason_from_the_system_logs_and_its_output(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    fake.write_log(run_id, "ModuleNotFoundError: No module named 'agent'")
    fake.system_event(run_id, "Normal", "ContainerStarted", "Started container 'execution'")
    fake.system_event(
        run_id,
        "Warning",
        "ContainerTerminated",
        "Container 'execution' was terminated with exit code '3'",
    )
    fake.set_status(run_id, "Failed")
    error = failed(exec_id)
    assert error == (
        f"the azure_container_apps run {run_id} ended (failed: the execution is Failed; "
        "ContainerTerminated: Container 'execution' was terminated with exit code '3') "
        "without starting the execution: ModuleNotFoundError: No module named 'agent'"
    )


def test_an_image_that_cannot_be_pulled_fails_the_execution_saying_so(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    pull = 'Failed to pull image "registry.example/agents/agent@sha256:aaa": manifest unknown'
    fake.system_event(run_id, "Warning", "ImagePullBackOff", pull)
    fake.set_status(run_id, "Failed")
    error = failed(exec_id)
    assert f"ImagePullBackOff: {pull}" in error


def test_a_degraded_execution_fails_the_execution(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    # A replica killed from outside (node drained, memory) leaves the execution Degraded.
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    fake.system_event(run_id, "Warning", "ReplicaUnhealthy", "Container 'execution' OOMKilled")
    fake.set_status(run_id, "Degraded")
    error = failed(exec_id)
    assert (
        "ended (failed: the execution is Degraded; ReplicaUnhealthy: Container 'execution' "
        "OOMKilled) without starting the execution"
    ) in error


def test_a_run_that_succeeded_without_taking_the_execution_fails_it(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    fake.set_status(run_id, "Succeeded")
    error = failed(exec_id)
    assert error == (
        f"the azure_container_apps run {run_id} ended (succeeded) without starting the execution"
    )


def test_an_execution_stopped_on_container_apps_fails_the_execution_saying_so(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    fake.set_status(run_id, "Stopped")
    error = failed(exec_id)
    assert "ended (cancelled: stopped on Container Apps) without starting" in error


def test_a_run_container_apps_no_longer_knows_fails_the_execution(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    del fake.executions[run_id]  # past the job's execution history limit
    error = failed(exec_id)
    assert error == (
        f"the azure_container_apps run {run_id} is gone (missing: Container Apps no longer "
        "knows the execution) without starting the execution"
    )


def test_cancel_stops_the_execution_on_container_apps(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    run_id = run_of(exec_id)
    fake.set_status(run_id, "Running")
    cancelled = kitaru_cli("executions", "cancel", exec_id)
    assert cancelled.returncode == 0, cancelled
    assert get(exec_id)["status"] == "cancelled"
    assert fake.executions[run_id]["properties"]["status"] == "Stopped"


def test_logs_come_from_log_analytics_for_that_execution_only(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, api = aca
    exec_id = queue("aca")
    other = queue("aca")
    run_id, other_run = run_of(exec_id), run_of(other)
    for n in range(4):
        fake.write_log(run_id, f"step {n}")
    fake.write_log(other_run, "another execution's line")
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    assert logs.stdout == (
        f"── azure_container_apps run {run_id} ──\n" + "".join(f"step {n}\n" for n in range(4))
    )
    (query,) = [c for c in api.calls if c.path.startswith("/v1/workspaces/")]
    assert query.body["query"].startswith("ContainerAppConsoleLogs_CL | where ")


def test_logs_log_analytics_refuses_say_which_role_is_missing(
    aca: tuple[FakeContainerApps, Recorder],
) -> None:
    fake, _api = aca
    exec_id = queue("aca")
    fake.refuse_queries = True
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode != 0, logs
    assert "HTTP 403" in logs.stderr and "Log Analytics Reader" in logs.stderr, logs


def test_logs_without_a_workspace_say_how_to_read_them(tmp_path: Path, sqlite_journal: str) -> None:
    with recording(FakeContainerApps()) as api:
        registered = _register(api, tmp_path)
        assert registered.returncode == 0, registered
        exec_id = queue("aca")
        logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    assert "--set log_analytics_workspace_id=" in logs.stdout
    assert "az containerapp job logs show --name kitaru-" in logs.stdout


def test_register_names_the_environment_when_container_apps_cannot_find_it(
    tmp_path: Path, sqlite_journal: str
) -> None:
    fake = FakeContainerApps()
    fake.environment_found = False
    with recording(fake) as api:
        registered = _register(api, tmp_path)
    assert registered.returncode == 1, registered
    assert "setting 'environment_id'" in registered.stderr
    assert "'env' cannot be read in resource group 'rg'" in registered.stderr
    assert [s["name"] for s in kitaru_cli("stack", "list", "--json").json()] == ["local"]
