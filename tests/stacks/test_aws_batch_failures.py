"""`aws_batch` past the happy path, as a user sees it: jobs on moto's Batch, which runs
them as containers on the local Docker engine (a stand-in image, tests/stacks/_stand_in.py),
read with `kitaru executions get`; a cancel that terminates the job on Batch; logs from
CloudWatch Logs on moto (`executions logs --orchestrator`).

moto moves a job through SUBMITTED ... RUNNING, SUCCEEDED and FAILED, and terminates
jobs with their reason; its DescribeJobs leaves out the container's exit code (the
container's output says it here), and it does not write the reasons AWS does for a failed image pull (`CannotPullContainerError` in `container.reason`), an OOM
kill or a reclaimed Spot instance (the attempt's `statusReason`). What kitaru makes of
those is pinned on DescribeJobs answers of AWS's shape at the end of this file."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kitaru_orchestrators._aws_batch import job_status

from tests.conftest import kitaru_cli
from tests.stacks._queued import failed, get, queue, run_of, settled, until
from tests.stacks._services import need
from tests.stacks.test_aws_batch_stack import _queue

SERVICES = ("DOCKER_HOST", "KITARU_TEST_REGISTRY", "KITARU_TEST_BASE_IMAGE", "KITARU_TEST_MOTO_URL")
services = pytest.mark.services


class Batch:
    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        import boto3

        self.env = env
        self.tmp_path = tmp_path
        self.moto = env["KITARU_TEST_MOTO_URL"]
        self.queue = _queue(self.moto)
        self.client = boto3.client("batch", endpoint_url=self.moto, region_name="us-east-1")

    def register(self, *settings: str) -> None:
        registered = kitaru_cli(
            "stack", "register", "batch",
            "--orchestrator", "aws_batch",
            # Containers would read the journal URL from Secrets Manager; here it is SQLite.
            "--journal",
            "secret:arn:aws:secretsmanager:us-east-1:123456789012:secret:kitaru-journal",
            "--artifact-store", (self.tmp_path / "artifacts").as_uri(),
            "--registry", f"{self.env['KITARU_TEST_REGISTRY']}/kitaru",
            "--set", f"job_queue={self.queue}",
            "--set", "region=us-east-1",
            "--set", f"endpoint_url={self.moto}",
            *[a for s in settings for a in ("--set", s)],
        )  # fmt: skip
        assert registered.returncode == 0, registered

    def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.describe_jobs(jobs=[job_id])["jobs"][0]
        return found

    def until(self, what: Callable[[], bool], timeout: float = 120) -> None:
        until(what, timeout, "the job did not get there")

    def container(self, job_id: str) -> Any:
        import docker

        for container in docker.from_env().containers.list():
            if container.name.endswith(job_id):
                return container
        return None


@pytest.fixture
def batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_journal: str) -> Batch:
    env = need(*SERVICES)
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    return Batch(env, tmp_path)


@services
def test_a_running_job_leaves_the_execution_queued(batch: Batch, image: str) -> None:
    batch.register("environment.STAND_IN=sleep")
    exec_id = queue("batch", image)
    job = run_of(exec_id)
    batch.until(lambda: batch.job(job)["status"] == "RUNNING")
    view = settled(exec_id, timeout=8)
    assert (view["status"], view["error"]) == ("queued", None)
    kitaru_cli("executions", "cancel", exec_id)


@services
def test_cancel_terminates_the_job_on_batch(batch: Batch, image: str) -> None:
    batch.register("environment.STAND_IN=sleep")
    exec_id = queue("batch", image)
    job = run_of(exec_id)
    batch.until(lambda: batch.container(job) is not None)
    cancelled = kitaru_cli("executions", "cancel", exec_id)
    assert cancelled.returncode == 0, cancelled
    assert get(exec_id)["status"] == "cancelled"
    # On Batch: the job failed with kitaru's reason, its container stopped.
    batch.until(lambda: batch.job(job)["status"] == "FAILED")
    assert batch.job(job)["statusReason"] == "cancelled with kitaru executions cancel"
    assert batch.container(job) is None


@services
def test_a_container_that_exits_non_zero_fails_the_execution_with_its_code_and_log(
    batch: Batch, image: str
) -> None:
    batch.register("environment.STAND_IN=exit:3")
    exec_id = queue("batch", image)
    job = run_of(exec_id)
    error = failed(exec_id, timeout=120)
    head, _, tail = error.partition(" without starting the execution: ")
    assert head == f"the aws_batch run {job} ended (failed)"  # moto: no exitCode
    assert sorted(tail.splitlines()) == [
        "exiting with 3",
        f"stand-in for kitaru run-execution {exec_id}",
    ]


@services
def test_an_image_that_cannot_be_pulled_fails_the_execution(batch: Batch, image: str) -> None:
    batch.register()
    exec_id = queue("batch", image.rsplit(":", 1)[0] + "-missing:nope")
    job = run_of(exec_id)
    error = failed(exec_id, timeout=120)
    # moto gives no reason (AWS says CannotPullContainerError: see the end of this file).
    assert error == f"the aws_batch run {job} ended (failed) without starting the execution"


@services
def test_a_container_killed_from_outside_fails_the_execution_with_its_signal_exit(
    batch: Batch, image: str
) -> None:
    # What a reclaimed Spot instance or the OOM killer does to the container.
    batch.register("environment.STAND_IN=sleep")
    exec_id = queue("batch", image)
    job = run_of(exec_id)
    batch.until(lambda: batch.container(job) is not None)
    batch.container(job).kill()
    error = failed(exec_id, timeout=120)
    assert error == (
        f"the aws_batch run {job} ended (failed) without starting the execution: "
        f"stand-in for kitaru run-execution {exec_id}"
    )


@services
def test_a_job_that_succeeded_without_taking_the_execution_fails_it(
    batch: Batch, image: str
) -> None:
    batch.register("environment.STAND_IN=exit:0")
    exec_id = queue("batch", image)
    job = run_of(exec_id)
    error = failed(exec_id, timeout=120)
    head, _, tail = error.partition(" without starting the execution: ")
    assert head == f"the aws_batch run {job} ended (succeeded)"
    # Its log (stdout and stderr, in the engine's order).
    assert sorted(tail.splitlines()) == [
        "exiting with 0",
        f"stand-in for kitaru run-execution {exec_id}",
    ]


@services
def test_logs_come_from_cloudwatch_logs(batch: Batch, image: str) -> None:
    batch.register(f"environment.STAND_IN=env:MARKER_{uuid.uuid4().hex[:6]}")
    exec_id = queue("batch", image)
    job = run_of(exec_id)
    batch.until(lambda: batch.job(job)["status"] in ("SUCCEEDED", "FAILED"))
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    lines = logs.stdout.splitlines()
    assert lines[0] == f"── aws_batch run {job} ──"
    assert lines[1] == f"stand-in for kitaru run-execution {exec_id}"
    assert lines[2].startswith("MARKER_") and lines[2].endswith("=(not set)")


# DescribeJobs answers of the shape AWS gives (moto writes none of these reasons).


def _job(status: str, **fields: Any) -> dict[str, Any]:
    return {"jobId": "0b3c", "jobName": "kitaru-kx", "status": status, **fields}


@pytest.mark.parametrize(
    ("job", "state", "detail", "exit_code"),
    [
        pytest.param(_job("RUNNABLE"), "pending", "", None, id="runnable"),
        pytest.param(_job("STARTING"), "pending", "", None, id="starting"),
        pytest.param(
            _job(
                "FAILED",
                statusReason="Task failed to start",
                container={
                    "reason": "CannotPullContainerError: pull image manifest has been retried "
                    "5 time(s): 123.dkr.ecr.us-east-1.amazonaws.com/agent:x: not found"
                },
            ),
            "failed",
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
            "123.dkr.ecr.us-east-1.amazonaws.com/agent:x: not found; Task failed to start",
            None,
            id="image-pull",
        ),
        pytest.param(
            _job(
                "FAILED",
                statusReason="Essential container in task exited",
                container={
                    "exitCode": 137,
                    "reason": "OutOfMemoryError: Container killed due to memory usage",
                },
            ),
            "failed",
            "OutOfMemoryError: Container killed due to memory usage; Essential container in "
            "task exited",
            137,
            id="oom",
        ),
        pytest.param(
            _job(
                "FAILED",
                statusReason="Host EC2 (instance i-0abc123) terminated.",
                attempts=[
                    {
                        "container": {"exitCode": 143, "logStreamName": "s"},
                        "statusReason": "Host EC2 (instance i-0abc123) terminated.",
                    }
                ],
            ),
            "failed",
            "Host EC2 (instance i-0abc123) terminated.",
            143,
            id="spot-reclaimed",
        ),
        pytest.param(_job("SUCCEEDED", container={"exitCode": 0}), "succeeded", "", 0, id="ok"),
    ],
)
def test_what_batch_says_of_a_job_becomes_the_run_state_and_reason(
    job: dict[str, Any], state: str, detail: str, exit_code: int | None
) -> None:
    status = job_status(job)
    assert (status.state, status.detail, status.exit_code) == (state, detail, exit_code)
