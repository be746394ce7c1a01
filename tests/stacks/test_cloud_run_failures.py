"""`gcp_cloud_run` past the happy path, as a user sees it: each state Cloud Run reports for
an execution's run, read with `kitaru executions get`; a cancel that reaches Cloud Run;
the run's output through `kitaru executions logs --orchestrator` (Cloud Logging). The
platform is tests/stacks/_fake_cloud_run.py behind the official client library; the
journal, the stack and the CLI are kitaru's own, in their own processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli
from tests.stacks._fake_cloud_run import FakeCloudRun
from tests.stacks._queued import (
    failed,
    get,
    queue,
    register_cloud_run,
    run_of,
    still_queued_after_asking,
)
from tests.stacks._recorder import Recorder, recording


@pytest.fixture
def cloud_run(tmp_path: Path, sqlite_journal: str) -> Iterator[tuple[FakeCloudRun, Recorder]]:
    fake = FakeCloudRun()
    with recording(fake) as api:
        registered = register_cloud_run(api.url, tmp_path, "--set", f"logging_endpoint={api.url}")
        assert registered.returncode == 0, registered
        yield fake, api


def _asked(api: Recorder, run_id: str) -> Callable[[], bool]:
    return lambda: ("GET", f"/v2/{run_id}") in api.made()


def _failed(message: str, **more: Any) -> dict[str, Any]:
    return {
        "failedCount": 1,
        "reconciling": False,
        "conditions": [
            {
                "type": "Completed",
                "state": "CONDITION_FAILED",
                "executionReason": "NON_ZERO_EXIT_CODE",
                "message": message,
            },
            {"type": "ResourcesAvailable", "state": "CONDITION_SUCCEEDED"},
        ],
        **more,
    }


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(
            {
                "conditions": [
                    {"type": "Completed", "state": "CONDITION_PENDING"},
                    {
                        "type": "ResourcesAvailable",
                        "state": "CONDITION_RECONCILING",
                        "message": "Provisioning resources for the task.",
                    },
                ]
            },
            id="pending",
        ),
        pytest.param(
            {
                "runningCount": 1,
                "conditions": [
                    {"type": "Completed", "state": "CONDITION_PENDING"},
                    {"type": "Started", "state": "CONDITION_SUCCEEDED"},
                ],
            },
            id="running",
        ),
    ],
)
def test_a_run_not_yet_ended_leaves_the_execution_queued(
    cloud_run: tuple[FakeCloudRun, Recorder], state: dict[str, Any]
) -> None:
    fake, api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    fake.update(run_id, **state)
    view = still_queued_after_asking(exec_id, _asked(api, run_id))
    assert (view["status"], view["error"]) == ("queued", None)
    assert view["orchestrator"] == "gcp_cloud_run"


def test_a_task_that_exits_non_zero_fails_the_execution_with_its_exit_code_and_log(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    fake.write_log(run_id, "Traceback (most recent call last):")
    fake.write_log(run_id, "ModuleNotFoundError: No module named 'agent'")
    fake.attempt(run_id, {"exitCode": 3, "status": {"code": 2, "message": "exit status 3"}})
    fake.update(run_id, **_failed("Task kitaru-x-0 failed with exit code 3."))

    error = failed(exec_id)
    assert error.startswith(
        f"the gcp_cloud_run run {run_id} ended (failed, exit code 3: Task kitaru-x-0 failed "
        "with exit code 3.; exit status 3) without starting the execution: "
    ), error
    assert error.endswith("ModuleNotFoundError: No module named 'agent'")


def test_an_image_that_cannot_be_pulled_fails_the_execution_saying_so(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    missing = "Image 'registry.example/agents/agent@sha256:aaa' not found."
    fake.update(
        run_id,
        reconciling=False,
        conditions=[
            {"type": "Completed", "state": "CONDITION_FAILED", "message": missing},
            {
                "type": "ResourcesAvailable",
                "state": "CONDITION_FAILED",
                "reason": "CONTAINER_MISSING",
                "message": missing,
            },
        ],
    )
    error = failed(exec_id)
    assert f"ended (failed: {missing}) without starting the execution" in error


def test_a_task_killed_for_memory_fails_the_execution_with_the_reason(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    # Cloud Run has no spot capacity to be preempted from; what ends a task from outside
    # is its limits (memory, timeout): a signal, no exit code.
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    fake.attempt(
        run_id,
        {"termSignal": 9, "status": {"code": 9, "message": "Container terminated on signal 9."}},
    )
    fake.update(run_id, **_failed("Memory limit of 2048 MiB exceeded with 2071 MiB used."))
    error = failed(exec_id)
    assert (
        "ended (failed: Memory limit of 2048 MiB exceeded with 2071 MiB used.; Container "
        "terminated on signal 9.) without starting the execution"
    ) in error


def test_a_run_that_succeeded_without_taking_the_execution_fails_it(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    fake.write_log(run_id, "usage: kitaru [OPTIONS] COMMAND", as_json=True)
    fake.update(
        run_id,
        succeededCount=1,
        reconciling=False,
        conditions=[{"type": "Completed", "state": "CONDITION_SUCCEEDED"}],
    )
    error = failed(exec_id)
    assert error == (
        f"the gcp_cloud_run run {run_id} ended (succeeded) without starting the execution: "
        "usage: kitaru [OPTIONS] COMMAND"
    )


def test_a_run_cancelled_on_cloud_run_fails_the_execution_saying_so(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    fake.update(
        run_id,
        cancelledCount=1,
        reconciling=False,
        conditions=[
            {"type": "Completed", "state": "CONDITION_FAILED", "executionReason": "CANCELLED"}
        ],
    )
    error = failed(exec_id)
    assert (
        f"the gcp_cloud_run run {run_id} ended (cancelled: cancelled on Cloud Run) without "
        "starting the execution"
    ) in error


def test_a_run_cloud_run_no_longer_knows_fails_the_execution(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    del fake.executions[run_id]  # deleted, or expired after its retention
    error = failed(exec_id)
    assert error == (
        f"the gcp_cloud_run run {run_id} is gone (missing: Cloud Run no longer knows the "
        "execution) without starting the execution"
    )


def test_cancel_stops_the_execution_on_cloud_run(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    run_id = run_of(exec_id)
    fake.update(run_id, runningCount=1)
    cancelled = kitaru_cli("executions", "cancel", exec_id)
    assert cancelled.returncode == 0, cancelled
    assert get(exec_id)["status"] == "cancelled"
    # Cloud Run's own record of the execution says cancelled.
    on_platform = fake.executions[run_id]
    assert (on_platform["cancelledCount"], on_platform["runningCount"]) == (1, 0)
    assert on_platform["conditions"][0]["executionReason"] == "CANCELLED"


def test_logs_come_from_cloud_logging_for_that_execution_only(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, api = cloud_run
    exec_id = queue("cloud")
    other = queue("cloud")
    run_id, other_run = run_of(exec_id), run_of(other)
    for n in range(7):  # more than a page: the reader follows nextPageToken
        fake.write_log(run_id, f"step {n}", as_json=n % 2 == 1)
    fake.write_log(other_run, "another execution's line")

    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    assert logs.stdout == (
        f"── gcp_cloud_run run {run_id} ──\n" + "".join(f"step {n}\n" for n in range(7))
    )
    listed = [c for c in api.calls if c.path == "/v2/entries:list"]
    assert len(listed) == 3
    assert listed[0].body["resourceNames"] == ["projects/p"]
    as_json = kitaru_cli("executions", "logs", exec_id, "--orchestrator", "--json")
    assert as_json.json()["logs"].splitlines() == [f"step {n}" for n in range(7)]


def test_logs_cloud_logging_refuses_say_which_role_is_missing(
    cloud_run: tuple[FakeCloudRun, Recorder],
) -> None:
    fake, _api = cloud_run
    exec_id = queue("cloud")
    fake.refuse_logging = True
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode != 0, logs
    assert "HTTP 403" in logs.stderr and "roles/logging.viewer" in logs.stderr, logs


def test_register_names_the_settings_at_fault_when_cloud_run_refuses(tmp_path: Path) -> None:
    fake = FakeCloudRun()
    fake.refuse_listing = True
    with recording(fake) as api:
        registered = register_cloud_run(api.url, tmp_path)
    assert registered.returncode == 1, registered
    assert "setting 'project'/'region'" in registered.stderr, registered
    assert "Permission 'run.jobs.list' denied" in registered.stderr
    assert [s["name"] for s in kitaru_cli("stack", "list", "--json").json()] == ["local"]
