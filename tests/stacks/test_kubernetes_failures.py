"""`kubernetes` past the happy path, as a user sees it: Jobs through the API emulator
(scripts/services/fake-k8s.sh), run by the test kubelet (tests/stacks/_kubelet.py) on
the local Docker engine with a stand-in image (tests/stacks/_stand_in.py). Each state
the Job and its Pod reach is read with `kitaru executions get`; a cancel deletes the
Job and stops its container; logs come from the Pod (`executions logs --orchestrator`)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kitaru_orchestrators._kubernetes import KubernetesOrchestrator
from kitaru_stacks import KubernetesSettings

from kitaru.journal import StackRecord
from tests.conftest import kitaru_cli
from tests.stacks._kubelet import CONTAINER_LABEL, FakeKubelet
from tests.stacks._queued import failed, get, queue, run_of, settled, until
from tests.stacks._services import need

pytestmark = pytest.mark.services

SERVICES = (
    "KITARU_TEST_KUBECONFIG",
    "KITARU_TEST_K8S_POD_LOGS",
    "DOCKER_HOST",
    "KITARU_TEST_REGISTRY",
    "KITARU_TEST_BASE_IMAGE",
)


class Cluster:
    def __init__(self, env: dict[str, str], tmp_path: Path) -> None:
        self.env = env
        self.tmp_path = tmp_path
        stack = StackRecord(name="k8s", orchestrator="kubernetes", artifact_store="file:///x")
        self.orch = KubernetesOrchestrator(
            stack, KubernetesSettings.model_validate({"kubeconfig": env["KITARU_TEST_KUBECONFIG"]})
        )
        self.kubelet = FakeKubelet(self.orch, env["KITARU_TEST_K8S_POD_LOGS"])

    def register(self, *settings: str) -> None:
        registered = kitaru_cli(
            "stack", "register", "k8s",
            "--orchestrator", "kubernetes",
            # Containers would read the journal URL from a Secret; here it is SQLite.
            "--journal", "secret:kitaru-journal#url",
            "--artifact-store", (self.tmp_path / "artifacts").as_uri(),
            "--registry", f"{self.env['KITARU_TEST_REGISTRY']}/kitaru",
            "--set", f"kubeconfig={self.env['KITARU_TEST_KUBECONFIG']}",
            *[a for s in settings for a in ("--set", s)],
        )  # fmt: skip
        assert registered.returncode == 0, registered

    def secret(self, name: str, **data: str) -> None:
        """Create (or replace) a Secret, as `kubectl create secret generic` would."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.orch.core.delete_namespaced_secret(name, "default")
        except ApiException:
            pass
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.orch.core.create_namespaced_secret(
            "default", {"metadata": {"name": name}, "data": encoded}
        )

    def pull_secret(self, name: str, registry: str, username: str, password: str) -> None:
        """As `kubectl create secret docker-registry` would."""
        auth = base64.b64encode(f"{username}:{password}".encode()).decode()
        config = {"auths": {registry: {"username": username, "password": password, "auth": auth}}}
        self.secret(name, **{".dockerconfigjson": json.dumps(config)})

    def account(self, name: str, automount: bool = True) -> None:
        """Create a ServiceAccount (if it is not there yet)."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.orch.core.create_namespaced_service_account(
                "default",
                {"metadata": {"name": name}, "automountServiceAccountToken": automount},
            )
        except ApiException as exc:
            if exc.status != 409:
                raise

    def has(self, secret: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        try:
            self.orch.core.read_namespaced_secret(secret, "default")
        except ApiException:
            return False
        return True

    def job(self, name: str) -> Any:
        return self.orch.batch.read_namespaced_job(name, "default")

    def pods(self, job: str) -> list[Any]:
        return [
            p
            for p in self.orch.core.list_namespaced_pod("default").items
            if (p.metadata.labels or {}).get("job-name") == job
        ]

    def until(self, what: Callable[[], bool], timeout: float = 120) -> None:
        def there() -> bool:
            assert not self.kubelet.errors, self.kubelet.errors
            return what()

        until(there, timeout, "the cluster did not get there")

    def running(self, job: str) -> bool:
        pods = self.pods(job)
        return bool(pods) and (pods[0].status.phase == "Running")


@pytest.fixture
def cluster(tmp_path: Path, sqlite_journal: str) -> Iterator[Cluster]:
    env = need(*SERVICES)
    made = Cluster(env, tmp_path)
    made.secret("kitaru-journal", url="sqlite:////nowhere/journal.db")
    made.kubelet.seen.update(
        j.metadata.name for j in made.orch.batch.list_namespaced_job("default").items
    )
    made.kubelet.thread.start()
    yield made
    made.kubelet.stop.set()
    made.kubelet.thread.join(timeout=30)
    assert not made.kubelet.errors, made.kubelet.errors


def test_a_job_no_node_has_started_leaves_the_execution_queued(
    cluster: Cluster, image: str
) -> None:
    cluster.kubelet.stop.set()  # no node takes the pod: it stays Pending
    cluster.register()
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    assert cluster.job(job).metadata.labels["kitaru.dev/stack"] == "k8s"
    before = time.monotonic()
    view = settled(exec_id, timeout=8)
    assert time.monotonic() - before >= 5  # asked past the queued check, still queued
    assert (view["status"], view["error"]) == ("queued", None)


def test_a_running_job_leaves_the_execution_queued_until_its_container_takes_it(
    cluster: Cluster, image: str
) -> None:
    cluster.register("environment.STAND_IN=sleep")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    cluster.until(lambda: cluster.running(job))
    view = settled(exec_id, timeout=8)
    assert (view["status"], view["error"]) == ("queued", None)
    kitaru_cli("executions", "cancel", exec_id)


def test_cancel_deletes_the_job_and_stops_its_container(cluster: Cluster, image: str) -> None:
    import docker

    cluster.register("environment.STAND_IN=sleep")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    cluster.until(lambda: cluster.running(job))
    cancelled = kitaru_cli("executions", "cancel", exec_id)
    assert cancelled.returncode == 0, cancelled
    assert get(exec_id)["status"] == "cancelled"
    # On the cluster: the Job is gone, then its pod and its container.
    assert cluster.orch.status(job).state == "missing"
    cluster.until(lambda: not cluster.pods(job))
    engine = docker.from_env()
    cluster.until(
        lambda: all(
            c.status != "running"
            for c in engine.containers.list(all=True, filters={"label": f"{CONTAINER_LABEL}={job}"})
        )
    )


def test_a_container_that_exits_non_zero_fails_the_execution_with_code_reason_and_log(
    cluster: Cluster, image: str
) -> None:
    cluster.register("environment.STAND_IN=exit:3")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    error = failed(exec_id)
    head, _, tail = error.partition(" without starting the execution: ")
    assert head == (
        f"the kubernetes run {job} ended (failed, exit code 3: BackoffLimitExceeded: Job has "
        "reached the specified backoff limit)"
    )
    # The pod's log (stdout and stderr, in the engine's order).
    assert sorted(tail.splitlines()) == [
        "exiting with 3",
        f"stand-in for kitaru run-execution {exec_id}",
    ]


def test_an_image_that_cannot_be_pulled_fails_the_execution_saying_so(
    cluster: Cluster, image: str
) -> None:
    cluster.register()
    missing = image.rsplit(":", 1)[0] + "-missing:nope"
    exec_id = queue("k8s", missing)
    error = failed(exec_id)
    assert f'ended (failed: ImagePullBackOff: failed to pull and unpack image "{missing}"' in (
        error
    )


def test_a_missing_secret_fails_the_execution_naming_it(cluster: Cluster, image: str) -> None:
    if cluster.has("llm-keys"):  # another test made it
        cluster.orch.core.delete_namespaced_secret("llm-keys", "default")
    cluster.register("secret_environment.OPENAI_API_KEY=secret:llm-keys#openai")
    exec_id = queue("k8s", image)
    error = failed(exec_id)
    assert '(failed: CreateContainerConfigError: secret "llm-keys" not found)' in error


def test_a_preempted_pod_fails_the_execution_saying_it_was_preempted(
    cluster: Cluster, image: str
) -> None:
    cluster.register("environment.STAND_IN=sleep")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    cluster.until(lambda: cluster.running(job))
    cluster.kubelet.preempt(job)
    error = failed(exec_id)
    assert "PreemptionByScheduler: Preempted in order to admit critical pod" in error
    assert "exit code 137" in error


def test_a_job_deleted_on_the_cluster_fails_the_execution(cluster: Cluster, image: str) -> None:
    cluster.kubelet.stop.set()
    cluster.register()
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    cluster.orch.batch.delete_namespaced_job(job, "default")  # kubectl delete job
    error = failed(exec_id)
    assert error == (
        f"the kubernetes run {job} is gone (missing: the Job no longer exists) without "
        "starting the execution"
    )


def test_a_job_that_succeeded_without_taking_the_execution_fails_it(
    cluster: Cluster, image: str
) -> None:
    cluster.register("environment.STAND_IN=exit:0")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    error = failed(exec_id)
    head, _, tail = error.partition(" without starting the execution: ")
    assert head == f"the kubernetes run {job} ended (succeeded, exit code 0)"
    # Its log (stdout and stderr, in the engine's order).
    assert sorted(tail.splitlines()) == [
        "exiting with 0",
        f"stand-in for kitaru run-execution {exec_id}",
    ]


def test_logs_come_from_the_jobs_pod_with_secret_key_refs_resolved(
    cluster: Cluster, image: str
) -> None:
    cluster.secret("llm-keys", openai="sk-from-the-secret")
    cluster.register(
        "environment.STAND_IN=env:OPENAI_API_KEY",
        "secret_environment.OPENAI_API_KEY=secret:llm-keys#openai",
    )
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    # The Job has no status until the controller (the test kubelet) writes one.
    cluster.until(lambda: getattr(cluster.job(job).status, "succeeded", None) == 1)
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0, logs
    assert logs.stdout == (
        f"── kubernetes run {job} ──\nstand-in for kitaru run-execution {exec_id}\n"
        "OPENAI_API_KEY=sk-from-the-secret\n"
    )


def test_a_missing_service_account_fails_the_execution_naming_it(
    cluster: Cluster, image: str
) -> None:
    # As the API does, the pod is refused: the Job never gets one and says why in an event.
    cluster.register("service_account=nobody-made-this")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    error = failed(exec_id)
    assert error == (
        f"the kubernetes run {job} ended (failed: FailedCreate: Error creating: pods "
        f'"{job}-" is forbidden: error looking up service account default/nobody-made-this: '
        'serviceaccount "nobody-made-this" not found) without starting the execution'
    )
    assert cluster.pods(job) == []


def test_the_pod_runs_as_the_stacks_service_account_with_its_token(
    cluster: Cluster, image: str
) -> None:
    cluster.account("kitaru-runner")
    cluster.register("service_account=kitaru-runner", "environment.STAND_IN=exit:0")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    cluster.until(lambda: getattr(cluster.job(job).status, "succeeded", None) == 1)
    (pod,) = cluster.pods(job)
    assert pod.spec.service_account_name == "kitaru-runner"
    (mount,) = pod.spec.containers[0].volume_mounts
    assert mount.mount_path == "/var/run/secrets/kubernetes.io/serviceaccount"


def test_an_account_that_mounts_no_token_runs_the_pod_without_one(
    cluster: Cluster, image: str
) -> None:
    # What `kitaru stack provision` makes: a job account with automountServiceAccountToken
    # false, for pods that never call the Kubernetes API.
    cluster.account("kitaru-job-no-token", automount=False)
    cluster.register("service_account=kitaru-job-no-token", "environment.STAND_IN=exit:0")
    exec_id = queue("k8s", image)
    job = run_of(exec_id)
    cluster.until(lambda: getattr(cluster.job(job).status, "succeeded", None) == 1)
    (pod,) = cluster.pods(job)
    assert pod.spec.service_account_name == "kitaru-job-no-token"
    assert not pod.spec.containers[0].volume_mounts


@pytest.fixture(scope="module")
def private_image(image: str) -> str:
    """The stand-in, pushed to the registry that demands a login."""
    import docker

    registry = need("KITARU_TEST_AUTH_REGISTRY")["KITARU_TEST_AUTH_REGISTRY"]
    client = docker.from_env()
    tag = image.rsplit(":", 1)[1]
    repository = f"{registry}/kitaru/stand-in-private"
    client.images.get(image).tag(repository, tag)
    for line in client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=AUTH):
        assert "error" not in line, line
    return f"{repository}:{tag}"


AUTH = {"username": "kitaru", "password": "kitaru-test"}  # scripts/services/docker.sh


def test_an_image_pull_secret_lets_the_pod_pull_from_a_private_registry(
    cluster: Cluster, private_image: str
) -> None:
    registry = private_image.split("/", 1)[0]
    cluster.pull_secret("regcred", registry, **AUTH)
    cluster.register('image_pull_secrets=["regcred"]', "environment.STAND_IN=env:STAND_IN")
    exec_id = queue("k8s", private_image)
    job = run_of(exec_id)
    cluster.until(lambda: getattr(cluster.job(job).status, "succeeded", None) == 1)
    (pod,) = cluster.pods(job)
    assert [s.name for s in pod.spec.image_pull_secrets] == ["regcred"]
    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert "STAND_IN=env:STAND_IN" in logs.stdout, logs


def test_without_the_image_pull_secret_the_private_image_cannot_be_pulled(
    cluster: Cluster, private_image: str
) -> None:
    cluster.register()
    exec_id = queue("k8s", private_image)
    error = failed(exec_id)
    assert (
        f'ended (failed: ImagePullBackOff: failed to pull and unpack image "{private_image}"'
        in error
    )
