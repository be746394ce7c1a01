"""A stack made by provisioning runs a flow: the outputs-to-settings mapping, end to end.

Nothing is provisioned in a cloud. The real aws_batch program runs on Pulumi's mocks with
moto as the cloud behind them (moto_cloud.py): the bucket, roles, policies, security
group, Fargate compute environment and job queue it declares are created in moto's
server from the program's own inputs, and its outputs point at them (the repository at
the local registry). Those outputs go through exactly what `kitaru stack provision` does
after the engine returns (the program's stack mapping, then writing the stack), and the
example agent then runs on that stack: moto's Batch runs its job as a container on the
local Docker engine, on the provisioned queue, with the provisioned roles, writing to the
provisioned bucket and log group.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import run_mocked
from moto_cloud import MOTO_LOG_GROUP, MotoCloud

from tests.conftest import kitaru_cli, run_python
from tests.stacks._services import extra_ca, fresh_database, need, write_project

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SERVICES = (
    "DOCKER_HOST",
    "KITARU_TEST_REGISTRY",
    "KITARU_TEST_BASE_IMAGE",
    "KITARU_TEST_POSTGRES_URL",
    "KITARU_TEST_MOTO_URL",
)


def _until(exec_id: str, status: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
        if view["status"] == status or view["status"] not in ("queued", "running"):
            return view
        if time.monotonic() > deadline:
            return view
        time.sleep(0.5)


# tests/infra runs before tests/stacks: this test may be the session's first image build,
# which takes several minutes on the test engine's vfs storage.
@pytest.mark.timeout(900)
def test_a_stack_built_from_provisioned_outputs_runs_a_flow_on_batch(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import boto3
    import botocore.exceptions
    from kitaru_infra import config_for, program_for

    from kitaru.journal import current_journal
    from kitaru.stacks import _provision

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
    journal = current_journal()

    # What `kitaru stack provision batch --flavor aws_batch --set ...` checks first: the
    # infrastructure settings go to the program, the stack settings to the stack.
    plan = _provision.plan(
        journal,
        "batch",
        flavor="aws_batch",
        sets=[
            "region=us-east-1",
            "max_vcpus=4",
            "labels.team=agents",
            f"endpoint_url={moto}",
            f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
            f'ca_certificates=["{extra_ca()}"]',
            f"environment.AWS_ENDPOINT_URL={moto}",
            "environment.AWS_DEFAULT_REGION=us-east-1",
            "secret_environment.AWS_ACCESS_KEY_ID=env:AWS_ACCESS_KEY_ID",
            "secret_environment.AWS_SECRET_ACCESS_KEY=env:AWS_SECRET_ACCESS_KEY",
        ],
        creating=True,
    )
    assert plan.resolved == {"region": "us-east-1", "max_vcpus": 4, "labels": {"team": "agents"}}

    # The engine's part, on mocks: the real program, its resources created in moto.
    cloud = MotoCloud(moto, env["KITARU_TEST_REGISTRY"])
    recorded = run_mocked(
        program_for("aws_batch", config_for("aws_batch", plan.resolved)), cloud=cloud
    )
    compute = recorded.one("aws:batch/computeEnvironment:ComputeEnvironment").inputs
    assert compute["computeResources"]["maxVcpus"] == 4
    assert recorded.one("aws:s3/bucket:Bucket").inputs["tags"]["team"] == "agents"
    # The bucket policy refuses plain HTTP, and moto enforces it. moto's server speaks
    # only HTTP, so after checking that, the policy goes (AWS is reached over HTTPS).
    s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1")
    bucket = recorded.outputs["bucket"]
    with pytest.raises(botocore.exceptions.ClientError, match="Forbidden"):
        s3.put_object(Bucket=bucket, Key="probe", Body=b"plain http")
    s3.delete_bucket_policy(Bucket=bucket)

    # What `provision` does with the outputs the engine returns.
    record = _provision.save(
        journal, plan, plan.program.stack_settings(recorded.outputs, plan.resolved)
    )
    assert record.name == "batch" and record.orchestrator == "aws_batch"

    shown = kitaru_cli("stack", "show", "batch", "--json")
    assert shown.returncode == 0, shown
    view = shown.json()
    outputs = recorded.outputs
    assert view["artifact_store"] == f"s3://{outputs['bucket']}"
    assert view["registry"] == env["KITARU_TEST_REGISTRY"]
    assert view["builder"] == "docker"
    settings = view["settings"]
    assert settings["repository"] == "kitaru-images"
    assert settings["job_queue"] == outputs["job_queue"]
    assert settings["job_role_arn"] == outputs["job_role_arn"]
    assert settings["execution_role_arn"] == outputs["execution_role_arn"]
    assert settings["log_group"] == MOTO_LOG_GROUP
    assert settings["assign_public_ip"] is True
    assert settings["job_definition_prefix"] == "kitaru-"
    assert settings["endpoint_url"] == moto
    assert settings["infra_inputs"] == plan.inputs
    assert (
        settings["infra_outputs"]["orchestrator_policy_arn"] == outputs["orchestrator_policy_arn"]
    )

    # The flow runs on it. (A wait answered later, which submits a second job, is the
    # stacks tests' business: one job is enough to prove the settings.)
    project: Path = write_project(tmp_path_factory.mktemp("stack-project"))
    started = run_python(
        project / "agent.py",
        "tides",
        "no-wait",
        cwd=project,
        env={"KITARU_STACK": "batch"},
        timeout=800,
    )
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]
    view = _until(exec_id, "completed")
    assert view["status"] == "completed", view.get("error")
    assert (view["stack"], view["orchestrator"]) == ("batch", "aws_batch")
    assert view["result"]["draft"] == "FACTS ABOUT TIDES. FAC"
    assert view["metadata"]["image"].startswith(f"{env['KITARU_TEST_REGISTRY']}/kitaru-images@")

    batch = boto3.client("batch", endpoint_url=moto, region_name="us-east-1")
    job = batch.describe_jobs(jobs=[view["run_id"]])["jobs"][0]
    assert job["jobQueue"] == outputs["job_queue"]
    definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
        "jobDefinitions"
    ][0]
    assert definition["jobDefinitionName"].startswith(outputs["job_definition_prefix"])
    container = definition["containerProperties"]
    assert container["jobRoleArn"] == outputs["job_role_arn"]
    assert container["executionRoleArn"] == outputs["execution_role_arn"]
    assert container["logConfiguration"]["options"]["awslogs-group"] == MOTO_LOG_GROUP
    assert container["networkConfiguration"] == {"assignPublicIp": "ENABLED"}

    # The artifacts are in the provisioned bucket, the job's output in its log group.
    listed = s3.list_objects_v2(Bucket=outputs["bucket"]).get("Contents", [])
    assert listed, "no artifact in the provisioned bucket"
    deadline = time.monotonic() + 60
    while True:
        logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
        if f"execution {exec_id} completed" in logs.stdout or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert f"kitaru: execution {exec_id} completed" in logs.stdout, logs
