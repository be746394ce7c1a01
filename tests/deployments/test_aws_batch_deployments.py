"""A deployment invoked on the `aws_batch` orchestrator through moto's server, whose Batch
jobs run as containers on the local Docker engine. The project is the example as shipped,
so its image is the one the docker deployment tests pushed (same content, same tag): the
deploy reuses it, and the Batch job runs that digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import kitaru_cli
from tests.deployments._project import container_settings, services_env, write_project
from tests.stacks.test_aws_batch_stack import _queue


def test_a_version_deployed_to_batch_runs_its_image_in_a_batch_job(tmp_path: Path) -> None:
    import boto3

    env = services_env()
    moto = env["KITARU_TEST_MOTO_URL"]
    registered = kitaru_cli(
        "stack", "register", "batch", "-o", "aws_batch", "-a", f"s3://{env['BUCKET']}/runs",
        "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set", f"job_queue={_queue(moto)}", "--set", "region=us-east-1",
        "--set", f"endpoint_url={moto}", *container_settings(env),
        env=env,
    )  # fmt: skip
    assert registered.returncode == 0, registered
    project = write_project(tmp_path / "deploy-agent")

    deployed = kitaru_cli(
        "deploy", "agent.py:support", "--stack", "batch", "--tag", "batch", "--json",
        cwd=project, env=env, timeout=1200,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed
    version = deployed.json()
    assert (version["version"], version["stack"], version["orchestrator"]) == (
        1, "batch", "aws_batch",
    )  # fmt: skip

    ran = kitaru_cli(
        "deployments", "invoke", "support", "--tag", "batch",
        "--args", '["my order never came"]', "--wait", "--timeout", "300", "--json",
        env=env, timeout=400,
    )  # fmt: skip
    assert ran.returncode == 0, ran
    view = ran.json()
    assert view["status"] == "completed", view
    assert (view["stack"], view["orchestrator"], view["deployment_version"]) == (
        "batch", "aws_batch", 1,
    )  # fmt: skip
    assert view["result"]["reply"] == (
        "[brief] Hi there, about your shipping question: 'my order never came'."
    )
    batch = boto3.client("batch", endpoint_url=moto, region_name="us-east-1")
    job = batch.describe_jobs(jobs=[view["run_id"]])["jobs"][0]
    definition = batch.describe_job_definitions(jobDefinitions=[job["jobDefinition"]])[
        "jobDefinitions"
    ][0]
    assert definition["containerProperties"]["image"] == version["image"]


@pytest.fixture(autouse=True)
def _batch_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3 in this process (describe_jobs) talks to moto with its test credentials.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
