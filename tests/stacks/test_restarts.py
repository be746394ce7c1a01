"""Restarts (kitaru/stacks/_restarts.py) on real container platforms: a stack with
`max_restarts` set, an execution whose container is killed in the middle of a checkpoint
(as a preemption, the OOM killer or a lost node would), and nothing else done by hand:
the reader that polls (`kitaru executions get`) sees the run ended, submits the
execution again, and it resumes from its committed checkpoint, which does not run again.
The Docker engine runs the containers; on AWS Batch (moto) the job's container is
killed the same way. The journal is PostgreSQL, artifacts are on S3 (moto)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli, run_python
from tests.stacks._services import extra_ca, fresh_bucket, fresh_database, need, write_project
from tests.stacks.test_aws_batch_stack import _queue

pytestmark = pytest.mark.services

SERVICES = (
    "DOCKER_HOST",
    "KITARU_TEST_REGISTRY",
    "KITARU_TEST_BASE_IMAGE",
    "KITARU_TEST_POSTGRES_URL",
    "KITARU_TEST_MOTO_URL",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_project(tmp_path_factory.mktemp("restart-project"))


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    found = need(*SERVICES)
    moto = found["KITARU_TEST_MOTO_URL"]
    for key, value in {
        "KITARU_JOURNAL_URL": fresh_database(),
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    return {**found, "bucket": fresh_bucket(moto)}


def _register(env: dict[str, str], name: str, orchestrator: str, *settings: str) -> None:
    moto = env["KITARU_TEST_MOTO_URL"]
    registered = kitaru_cli(
        "stack", "register", name,
        "--orchestrator", orchestrator,
        "--artifact-store", f"s3://{env['bucket']}/runs",
        "--registry", f"{env['KITARU_TEST_REGISTRY']}/kitaru",
        "--set", f"base_image={env['KITARU_TEST_BASE_IMAGE']}",
        "--set", f'ca_certificates=["{extra_ca()}"]',
        "--set", f"environment.AWS_ENDPOINT_URL={moto}",
        "--set", "environment.AWS_DEFAULT_REGION=us-east-1",
        # A short lease: a killed container is noticed within seconds.
        "--set", "environment.KITARU_LEASE_SECONDS=3",
        "--set", "secret_environment.AWS_ACCESS_KEY_ID=env:AWS_ACCESS_KEY_ID",
        "--set", "secret_environment.AWS_SECRET_ACCESS_KEY=env:AWS_SECRET_ACCESS_KEY",
        "--set", "max_restarts=2",
        "--set", "restart_backoff_seconds=0",
        *[a for s in settings for a in ("--set", s)],
        "--use",
    )  # fmt: skip
    assert registered.returncode == 0, registered


def get(exec_id: str) -> dict[str, Any]:
    view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
    return view


def until(
    exec_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 300
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    view = get(exec_id)
    while not done(view) and time.monotonic() < deadline:
        time.sleep(0.5)
        view = get(exec_id)
    return view


def _start(project: Path) -> str:
    # No wait; `draft` takes 20 s: long enough to kill the container in the middle.
    started = run_python(project / "agent.py", "kites", "no-wait", "20", cwd=project, timeout=1500)
    assert started.returncode == 0, started
    return started.stdout.strip().splitlines()[-1]


def _after_restart(exec_id: str, first_run: str) -> dict[str, Any]:
    view = until(exec_id, lambda v: v["status"] not in ("queued", "running", "crashed"))
    assert view["status"] == "completed", view
    assert view["result"]["draft"] == "FACTS ABOUT KITES. FAC"
    assert view["run_id"] != first_run
    assert view["metadata"]["restarts"] == 1
    assert view["metadata"]["restart_reason"].startswith(f"run {first_run} failed")
    # `fetch` committed in the first run: read back, not run again; `draft` ran to the end.
    assert [(c["key"], c["origin"]) for c in view["checkpoints"]] == [
        ("fetch", "journal"),
        ("draft", "ran"),
    ]
    return view


def _fetched(view: dict[str, Any]) -> bool:
    return any(c["key"] == "fetch" for c in view["checkpoints"])


def test_docker_a_killed_container_is_restarted_and_resumes_from_its_checkpoint(
    env: dict[str, str], project: Path
) -> None:
    import docker

    _register(env, "box", "docker")
    exec_id = _start(project)
    view = until(exec_id, _fetched)
    assert view["status"] == "running", view
    first_run = view["run_id"]
    docker.from_env().containers.get(first_run).kill()

    view = _after_restart(exec_id, first_run)
    assert view["runs"] == 2
    assert "exit code 137" in view["metadata"]["restart_reason"]


def test_aws_batch_a_killed_job_is_restarted_and_resumes_from_its_checkpoint(
    env: dict[str, str], project: Path
) -> None:
    import boto3
    import docker

    moto = env["KITARU_TEST_MOTO_URL"]
    _register(
        env,
        "batch",
        "aws_batch",
        f"job_queue={_queue(moto)}",
        "region=us-east-1",
        f"endpoint_url={moto}",
    )
    exec_id = _start(project)
    view = until(exec_id, _fetched)
    assert view["status"] == "running", view
    first_job = view["run_id"]
    (container,) = [c for c in docker.from_env().containers.list() if c.name.endswith(first_job)]
    container.kill()  # what reclaiming a Spot instance does to the job's container

    view = _after_restart(exec_id, first_job)
    batch = boto3.client("batch", endpoint_url=moto, region_name="us-east-1")
    deadline = time.monotonic() + 60  # moto ends a job once it has read its logs
    while time.monotonic() < deadline:
        jobs = batch.describe_jobs(jobs=[first_job, view["run_id"]])["jobs"]
        if jobs[1]["status"] != "RUNNING":
            break
        time.sleep(0.5)
    assert [j["status"] for j in jobs] == ["FAILED", "SUCCEEDED"]


def test_kubernetes_a_preempted_pod_is_restarted_and_resumes_from_its_checkpoint(
    env: dict[str, str], project: Path
) -> None:
    from kitaru_orchestrators._kubernetes import KubernetesOrchestrator
    from kitaru_stacks import KubernetesSettings

    from kitaru.journal import StackRecord
    from tests.stacks._kubelet import FakeKubelet

    cluster = need("KITARU_TEST_KUBECONFIG", "KITARU_TEST_K8S_POD_LOGS")
    orch = KubernetesOrchestrator(
        StackRecord(name="k8s", orchestrator="kubernetes", artifact_store="s3://b/p"),
        KubernetesSettings.model_validate({"kubeconfig": cluster["KITARU_TEST_KUBECONFIG"]}),
    )
    kubelet = FakeKubelet(orch, cluster["KITARU_TEST_K8S_POD_LOGS"])
    kubelet.seen.update(j.metadata.name for j in orch.batch.list_namespaced_job("default").items)
    kubelet.thread.start()
    try:
        _register(env, "k8s", "kubernetes", f"kubeconfig={cluster['KITARU_TEST_KUBECONFIG']}")
        exec_id = _start(project)
        view = until(exec_id, _fetched)
        assert view["status"] == "running", (view["metadata"], view["checkpoints"])
        first_job = view["run_id"]
        kubelet.preempt(first_job)

        view = _after_restart(exec_id, first_job)
        assert "PreemptionByScheduler" in view["metadata"]["restart_reason"]
        assert not kubelet.errors, kubelet.errors
    finally:
        kubelet.stop.set()
        kubelet.thread.join(timeout=30)
