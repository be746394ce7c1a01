"""The `aws_batch` orchestrator end to end on moto's server, whose Batch jobs really run
as containers on the local Docker engine: the image is pushed to the local registry, a job
definition is registered per image, every run of the execution is a SubmitJob, and the
container writes the journal (PostgreSQL) and artifacts (S3 on moto)."""

from __future__ import annotations

import json
import time
import uuid
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


def _queue(moto: str) -> str:
    import boto3

    kw: dict[str, Any] = {
        "endpoint_url": moto,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    suffix = uuid.uuid4().hex[:8]
    role = boto3.client("iam", **kw).create_role(
        RoleName=f"batch-{suffix}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    ec2 = boto3.client("ec2", **kw)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    group = ec2.describe_security_groups()["SecurityGroups"][0]["GroupId"]
    batch = boto3.client("batch", **kw)
    env = batch.create_compute_environment(
        computeEnvironmentName=f"ce-{suffix}",
        type="MANAGED",
        state="ENABLED",
        computeResources={
            "type": "FARGATE",
            "maxvCpus": 4,
            "subnets": [subnet],
            "securityGroupIds": [group],
        },
        serviceRole=role,
    )["computeEnvironmentArn"]
    name = f"kitaru-{suffix}"
    batch.create_job_queue(
        jobQueueName=name,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
    )
    return name


def _get(exec_id: str) -> dict[str, Any]:
    view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
    return view


def _until(exec_id: str, status: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = _get(exec_id)
        if view["status"] == status or view["status"] not in ("queued", "running"):
            return view
        if time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def test_wait_answered_later_runs_a_second_batch_job(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import boto3

    env = need(*SERVICES)
    moto = env["KITARU_TEST_MOTO_URL"]
    for key, value in {
        "KITARU_JOURNAL_URL": fresh_database(),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    bucket = fresh_bucket(moto)
    queue = _queue(moto)
    project: Path = write_project(tmp_path_factory.mktemp("stack-project"))

    no_bucket = kitaru_cli(
        "stack",
        "register",
        "batch",
        "-o",
        "aws_batch",
        "-a",
        "s3://no-such-bucket-kitaru/x",
        "--registry",
        f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set",
        f"job_queue={queue}",
        "--set",
        "region=us-east-1",
    )
    assert no_bucket.returncode == 1
    assert no_bucket.stderr.startswith("error: --artifact-store cannot be used"), no_bucket
    bad_registry = kitaru_cli(
        "stack",
        "register",
        "batch",
        "-o",
        "aws_batch",
        "-a",
        f"s3://{bucket}/runs",
        "--registry",
        "127.0.0.1:9/kitaru",
        "--set",
        f"job_queue={queue}",
        "--set",
        "region=us-east-1",
    )
    assert bad_registry.returncode == 1
    assert "--registry 127.0.0.1:9/kitaru cannot be reached" in bad_registry.stderr
    assert [s["name"] for s in kitaru_cli("stack", "list", "--json").json()] == ["local"]

    bad_queue = kitaru_cli(
        "stack",
        "register",
        "batch",
        "-o",
        "aws_batch",
        "-a",
        f"s3://{bucket}/runs",
        "--registry",
        f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set",
        "job_queue=no-such-queue",
        "--set",
        "region=us-east-1",
    )
    assert bad_queue.returncode == 1
    assert "setting 'job_queue': there is no job queue 'no-such-queue'" in bad_queue.stderr

    registered = kitaru_cli(
        "stack",
        "register",
        "batch",
        "--orchestrator",
        "aws_batch",
        "--artifact-store",
        f"s3://{bucket}/runs",
        "--registry",
        f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set",
        f"job_queue={queue}",
        "--set",
        "region=us-east-1",
        "--set",
        f"endpoint_url={moto}",
        "--set",
        f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set",
        f'ca_certificates=["{extra_ca()}"]',
        "--set",
        f"environment.AWS_ENDPOINT_URL={moto}",
        "--set",
        "environment.AWS_DEFAULT_REGION=us-east-1",
        "--set",
        "secret_environment.AWS_ACCESS_KEY_ID=env:AWS_ACCESS_KEY_ID",
        "--set",
        "secret_environment.AWS_SECRET_ACCESS_KEY=env:AWS_SECRET_ACCESS_KEY",
    )
    assert registered.returncode == 0, registered

    started = run_python(
        project / "agent.py", "tides", cwd=project, env={"KITARU_STACK": "batch"}, timeout=1200
    )
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]
    view = _until(exec_id, "waiting")
    assert view["status"] == "waiting", view
    assert (view["stack"], view["orchestrator"]) == ("batch", "aws_batch")
    first_job = view["run_id"]

    batch = boto3.client("batch", endpoint_url=moto, region_name="us-east-1")
    job = batch.describe_jobs(jobs=[first_job])["jobs"][0]
    assert job["jobQueue"].endswith(queue)
    assert job["container"]["command"] == ["python", "-m", "kitaru", "run-execution", exec_id]
    definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
        "jobDefinitions"
    ][0]
    assert definition["containerProperties"]["image"] == view["metadata"]["image"]
    assert definition["jobDefinitionName"].startswith("kitaru-")

    answered = kitaru_cli("executions", "input", exec_id, "approve", "true")
    assert answered.returncode == 0, answered
    view = _until(exec_id, "completed")
    assert view["status"] == "completed", view
    assert view["result"]["draft"] == "FACTS ABOUT TIDES. FAC"
    assert view["run_id"] != first_job
    # Same image: the job definition is reused, not registered again.
    second = batch.describe_jobs(jobs=[view["run_id"]])["jobs"][0]
    assert second["jobDefinition"] == job["jobDefinition"]

    deadline = time.monotonic() + 60
    while True:
        logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
        if f"execution {exec_id} completed" in logs.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert f"kitaru: execution {exec_id} completed" in logs.stdout, logs
