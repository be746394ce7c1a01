"""The `kubernetes` orchestrator. No real cluster runs in these tests (none can be fetched
here): every manifest it generates is validated against the Kubernetes 1.37 schemas with
kubernetes-validate (strict), and the official client's calls go to kmock's Kubernetes API
emulator (scripts/services/fake-k8s.sh), which stores objects but runs nothing. A small
fake kubelet in the test runs each Job's container on the local Docker engine and writes
the Job's status back, so a whole execution with a wait goes through the Kubernetes API."""

from __future__ import annotations

import base64
import copy
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from kitaru_orchestrators._kubernetes import KubernetesOrchestrator, job_manifest
from kitaru_stacks import KubernetesSettings

from kitaru.journal import StackRecord
from kitaru.stacks import SecretRef, SubmitRequest
from tests.conftest import kitaru_cli, run_python
from tests.stacks._kubelet import FakeKubelet
from tests.stacks._services import extra_ca, fresh_bucket, fresh_database, need, write_project

K8S_VERSION = "1.37.0"


def _request(**overrides: Any) -> SubmitRequest:
    values: dict[str, Any] = {
        "exec_id": "kx_01ABCDEF",
        "flow": "agent",
        "stack": "k8s",
        "image": "registry.example.com/kitaru/agent@sha256:" + "a" * 64,
        "command": ("python", "-m", "kitaru", "run-execution", "kx_01ABCDEF"),
        "environment": {"KITARU_ARTIFACT_STORE": "s3://b/p", "KITARU_HOST": "kubernetes-x"},
        "secrets": {},
        "working_dir": "/app",
    }
    values.update(overrides)
    return SubmitRequest(**values)


SETTINGS = [
    {},
    {"namespace": "agents", "service_account": "kitaru-runner", "cpu": "500m", "memory": "1Gi"},
    {
        "image_pull_secrets": ["regcred"],
        "node_selector": {"pool": "cpu"},
        "ttl_seconds_after_finished": 60,
        "active_deadline_seconds": 3600,
    },
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_every_generated_manifest_is_a_valid_job(
    settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KITARU_PG_URL", "postgresql://kitaru@db:5432/kitaru")
    request = _request(
        secrets={
            "KITARU_JOURNAL_URL": SecretRef.parse("env:KITARU_PG_URL"),
            "OPENAI_API_KEY": SecretRef.parse("secret:llm-keys#openai"),
            "PGPASSWORD": SecretRef.parse("secret:kitaru-db"),
        }
    )
    manifest = job_manifest(request, KubernetesSettings.model_validate(settings), "kitaru-x-1")
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    # env: references are read where the execution is submitted; secret: ones stay refs.
    assert env["KITARU_JOURNAL_URL"]["value"] == "postgresql://kitaru@db:5432/kitaru"
    assert env["OPENAI_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "llm-keys", "key": "openai"}
    }
    assert env["PGPASSWORD"]["valueFrom"] == {
        "secretKeyRef": {"name": "kitaru-db", "key": "PGPASSWORD"}
    }
    if settings.get("service_account"):
        assert pod["serviceAccountName"] == "kitaru-runner"
        assert pod["containers"][0]["resources"]["limits"] == {"cpu": "500m", "memory": "1Gi"}


def test_the_validator_rejects_a_broken_job() -> None:
    manifest = job_manifest(_request(), KubernetesSettings(), "kitaru-x-1")
    broken = copy.deepcopy(manifest)
    broken["spec"]["backofLimit"] = 1  # a typo strict validation must catch
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def _orchestrator(kubeconfig: str, **settings: Any) -> KubernetesOrchestrator:
    stack = StackRecord(name="k8s", orchestrator="kubernetes", artifact_store="s3://b/p")
    return KubernetesOrchestrator(
        stack, KubernetesSettings.model_validate({"kubeconfig": kubeconfig, **settings})
    )


def test_client_calls_against_the_api_emulator() -> None:
    kubeconfig = need("KITARU_TEST_KUBECONFIG")["KITARU_TEST_KUBECONFIG"]
    orch = _orchestrator(kubeconfig, service_account="runner")
    orch.check()
    name = orch.submit(_request())
    stored = orch.batch.read_namespaced_job(name, "default")
    assert stored.spec.template.spec.containers[0].command == list(_request().command)
    assert stored.spec.template.spec.service_account_name == "runner"
    assert stored.metadata.labels["kitaru.dev/execution"] == "kx-01abcdef"
    # Its Jobs are named after the execution: no other Job is one of its runs.
    assert orch.is_run_of(name, "kx_01ABCDEF") and not orch.is_run_of(name, "kx_01ABCDEE")
    assert not orch.is_run_of("billing-nightly", "kx_01ABCDEF")
    assert orch.status(name).state == "pending"
    orch.batch.patch_namespaced_job_status(name, "default", {"status": {"active": 1}})
    # Active, but no pod of it runs yet (tests/stacks/test_kubernetes_failures.py runs them).
    assert orch.status(name).state == "pending"
    orch.batch.patch_namespaced_job_status(name, "default", {"status": {"active": 0, "failed": 1}})
    assert orch.status(name).state == "failed"
    orch.cancel(name)
    assert orch.status(name).state == "missing"
    orch.cancel(name)  # cancelling a gone Job is not an error


@pytest.fixture
def kube(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    env = need(
        "KITARU_TEST_KUBECONFIG",
        "KITARU_TEST_K8S_POD_LOGS",
        "DOCKER_HOST",
        "KITARU_TEST_REGISTRY",
        "KITARU_TEST_BASE_IMAGE",
        "KITARU_TEST_MOTO_URL",
    )
    moto = env["KITARU_TEST_MOTO_URL"]
    # The journal URL, password and all, lives in a Secret; the kubelet hands it to the
    # container through a secretKeyRef (this machine reaches it with its own variable).
    journal = fresh_database().replace("postgresql://postgres@", "postgresql://postgres:pw@")
    for key, value in {
        "KITARU_JOURNAL_URL": journal,
        "AWS_ENDPOINT_URL": moto,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    kubelet = FakeKubelet(
        _orchestrator(env["KITARU_TEST_KUBECONFIG"]), env["KITARU_TEST_K8S_POD_LOGS"]
    )
    kubelet.seen.update(
        j.metadata.name for j in kubelet.orch.batch.list_namespaced_job("default").items
    )
    secret = f"kitaru-journal-{uuid.uuid4().hex[:8]}"
    kubelet.orch.core.create_namespaced_secret(
        "default",
        {
            "metadata": {"name": secret},
            "data": {"url": base64.b64encode(journal.encode()).decode()},
        },
    )
    kubelet.thread.start()
    yield {**env, "bucket": fresh_bucket(moto), "kubelet": kubelet, "secret": secret}
    kubelet.stop.set()
    kubelet.thread.join(timeout=120)


def _until(exec_id: str, status: str, timeout: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
        if view["status"] == status or view["status"] not in ("queued", "running"):
            return view
        if time.monotonic() > deadline:
            return view
        time.sleep(0.5)


def test_execution_with_a_wait_through_the_kubernetes_api(
    kube: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    project: Path = write_project(tmp_path_factory.mktemp("stack-project"))
    moto = kube["KITARU_TEST_MOTO_URL"]
    registered = kitaru_cli(
        "stack",
        "register",
        "k8s",
        "--orchestrator",
        "kubernetes",
        "--artifact-store",
        f"s3://{kube['bucket']}/runs",
        "--registry",
        f"{kube['KITARU_TEST_REGISTRY']}/kitaru",
        "--set",
        f"kubeconfig={kube['KITARU_TEST_KUBECONFIG']}",
        "--journal",
        f"secret:{kube['secret']}#url",
        "--set",
        "service_account=kitaru-runner",
        "--set",
        f"base_image={kube['KITARU_TEST_BASE_IMAGE']}",
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
        "--use",
    )
    assert registered.returncode == 0, registered
    started = run_python(project / "agent.py", "dunes", cwd=project, timeout=1200)
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]
    view = _until(exec_id, "waiting")
    assert view["status"] == "waiting", view
    assert (view["stack"], view["orchestrator"]) == ("k8s", "kubernetes")
    first_job = view["run_id"]
    job = kube["kubelet"].orch.batch.read_namespaced_job(first_job, "default")
    manifest = kube["kubelet"].orch.api.sanitize_for_serialization(job)
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)

    answered = kitaru_cli("executions", "input", exec_id, "approve", "true")
    assert answered.returncode == 0, answered
    view = _until(exec_id, "completed")
    assert view["status"] == "completed", view
    assert view["result"]["draft"] == "FACTS ABOUT DUNES. FAC"
    assert view["run_id"] != first_job and view["run_id"] in kube["kubelet"].seen
    # The container had the journal only through the Secret.
    pod = kube["kubelet"].orch.core.list_namespaced_pod("default").items
    (env,) = [
        p.spec.containers[0].env
        for p in pod
        if (p.metadata.labels or {}).get("job-name") == view["run_id"]
    ]
    (journal_var,) = [e for e in env if e.name == "KITARU_JOURNAL_URL"]
    assert journal_var.value is None
    assert journal_var.value_from.secret_key_ref.name == kube["secret"]
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    assert f"kitaru: execution {exec_id} completed" in logs.stdout, logs
