"""`kubernetes`: a batch/v1 Job per execution (`pip install "kitaru[kubernetes]"`).

`job_manifest` is a pure function so every manifest can be validated against the
Kubernetes schemas; the orchestrator only sends it. `secret:NAME#KEY` references become
`secretKeyRef`s the kubelet resolves; `env:` references are read where the execution is
submitted. Logs come from the Job's pods.
"""

from __future__ import annotations

from typing import Any

import kubernetes.client
import kubernetes.config
from kubernetes.client.exceptions import ApiException

from kitaru import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import RunStatus, SubmitRequest
from kitaru_orchestrators._env import short_id, split_secrets

CONTAINER = "execution"


def job_name(exec_id: str, attempt: str) -> str:
    return f"kitaru-{short_id(exec_id)}-{attempt}"[:63].rstrip("-")


def job_manifest(request: SubmitRequest, settings: Any, name: str) -> dict[str, Any]:
    env, platform = split_secrets(request)
    variables: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in sorted(env.items())]
    for var, ref in sorted(platform.items()):
        variables.append(
            {
                "name": var,
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key or var}},
            }
        )
    labels = {
        "app.kubernetes.io/managed-by": "kitaru",
        "kitaru.dev/execution": short_id(request.exec_id),
        "kitaru.dev/stack": request.stack,
    }
    resources = {"cpu": settings.cpu, "memory": settings.memory}
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": request.image,
        "command": list(request.command),
        "env": variables,
        "resources": {"requests": resources, "limits": resources},
    }
    if request.working_dir:
        container["workingDir"] = request.working_dir
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if settings.service_account:
        pod["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": s} for s in settings.image_pull_secrets]
    if settings.node_selector:
        pod["nodeSelector"] = dict(settings.node_selector)
    spec: dict[str, Any] = {
        # Retrying is kitaru's job (resume re-submits); a pod restart would run twice.
        "backoffLimit": 0,
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    if settings.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = settings.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": labels},
        "spec": spec,
    }


class KubernetesOrchestrator:
    flavor = "kubernetes"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings
        self._api: kubernetes.client.ApiClient | None = None

    @property
    def api(self) -> kubernetes.client.ApiClient:
        if self._api is None:
            config = kubernetes.client.Configuration()
            try:
                kubernetes.config.load_kube_config(
                    config_file=self.settings.kubeconfig,
                    context=self.settings.context,
                    client_configuration=config,
                )
            except (kubernetes.config.ConfigException, OSError) as first:
                try:
                    kubernetes.config.load_incluster_config(client_configuration=config)
                except kubernetes.config.ConfigException:
                    raise ConfigurationError(
                        f"setting 'kubeconfig': no usable Kubernetes configuration ({first}); "
                        "--set kubeconfig=/path/to/kubeconfig (and context=...) or run inside "
                        "the cluster"
                    ) from None
            self._api = kubernetes.client.ApiClient(config)
        return self._api

    @property
    def batch(self) -> kubernetes.client.BatchV1Api:
        return kubernetes.client.BatchV1Api(self.api)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api)

    def check(self) -> None:
        try:
            self.batch.list_namespaced_job(self.settings.namespace, limit=1)
        except (ApiException, OSError) as exc:
            raise ConfigurationError(
                f"setting 'namespace': listing Jobs in {self.settings.namespace!r} failed "
                f"({_reason(exc)}); check the kubeconfig, the namespace and that the identity "
                "may list, create and delete Jobs there"
            ) from None

    def submit(self, request: SubmitRequest) -> str:
        import os

        name = job_name(request.exec_id, os.urandom(3).hex())
        manifest = job_manifest(request, self.settings, name)
        # The client sends a plain dict as it is; the manifest is the validated one.
        self.batch.create_namespaced_job(self.settings.namespace, manifest)
        return name

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        # `submit` names each Job after the execution and a random attempt.
        prefix = job_name(exec_id, "")
        return len(run_id) <= 63 and (run_id == prefix or run_id.startswith(prefix + "-"))

    def status(self, run_id: str) -> RunStatus:
        try:
            job = self.batch.read_namespaced_job_status(run_id, self.settings.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return RunStatus("missing", "the Job no longer exists")
            raise
        status = job.status
        pods = self._pods(run_id)
        said, exit_code = _pod_facts(pods)
        if status is not None and status.succeeded:
            return RunStatus("succeeded", exit_code=exit_code)
        if status is not None and status.failed:
            detail = "; ".join(dict.fromkeys(filter(None, [_condition(status), *said])))
            return RunStatus("failed", detail, exit_code=exit_code)
        stuck = [
            f"{w.reason}: {w.message}" if w.message else str(w.reason)
            for w in _waiting(pods)
            if w.reason in STUCK
        ]
        if stuck:
            # The kubelet retries these forever while the Job stays active; nothing
            # will change until someone fixes the image or the Secret.
            return RunStatus("failed", "; ".join(dict.fromkeys(stuck)))
        if any(p.status is not None and p.status.phase == "Running" for p in pods):
            return RunStatus("running")
        refused = self._refused(run_id) if not pods else ""
        if refused:
            # The Job controller tries again and again; no pod comes until someone
            # creates the ServiceAccount or fixes the stack.
            return RunStatus("failed", refused)
        return RunStatus("pending", "; ".join(said))

    def _refused(self, run_id: str) -> str:
        """Why the API refused the Job's pod, when it names a ServiceAccount that does
        not exist (the Job controller's `FailedCreate` warning event on the Job)."""
        try:
            events = self.core.list_namespaced_event(
                self.settings.namespace,
                field_selector=f"involvedObject.kind=Job,involvedObject.name={run_id}",
            ).items
        except ApiException:
            return ""  # no permission to read events: the run just looks pending
        for event in events:
            about = event.involved_object
            message = event.message or ""
            if (
                about is not None
                and (about.kind, about.name) == ("Job", run_id)
                and event.reason == "FailedCreate"
                and "serviceaccount" in message
                and "not found" in message
            ):
                return f"FailedCreate: {message}"
        return ""

    def _pods(self, run_id: str) -> list[Any]:
        pods = self.core.list_namespaced_pod(
            self.settings.namespace, label_selector=f"job-name={run_id}"
        ).items
        # The selector again, here: a pod of another Job is never read as this run's.
        return [
            p
            for p in pods
            if p.metadata is not None and (p.metadata.labels or {}).get("job-name") == run_id
        ]

    def logs(self, run_id: str) -> str:
        out = []
        for pod in self._pods(run_id):
            if pod.metadata is None or pod.metadata.name is None:
                continue
            try:
                out.append(
                    self.core.read_namespaced_pod_log(
                        pod.metadata.name, self.settings.namespace, container=CONTAINER
                    )
                )
            except ApiException:
                continue
        return "".join(out)

    def cancel(self, run_id: str) -> None:
        try:
            self.batch.delete_namespaced_job(
                run_id, self.settings.namespace, propagation_policy="Background"
            )
        except ApiException as exc:
            if exc.status != 404:
                raise


# Container waiting reasons the kubelet retries without end: the run cannot start.
# (ErrImagePull is not one: it is the first failed pull, which the kubelet tries again
# and which a registry's bad minute causes; ImagePullBackOff is the pull still failing.)
STUCK = frozenset(
    {
        "ImagePullBackOff",
        "InvalidImageName",
        "ErrImageNeverPull",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def _waiting(pods: list[Any]) -> list[Any]:
    return [
        c.state.waiting
        for p in pods
        if p.status is not None
        for c in p.status.container_statuses or []
        if c.state is not None and c.state.waiting is not None
    ]


def _pod_facts(pods: list[Any]) -> tuple[list[str], int | None]:
    """What the Job's pods say about how its container ended or why it is not running:
    a disruption (preemption, eviction, a node lost), a termination (`OOMKilled`, an
    exit code), an unschedulable pod."""
    said: list[str] = []
    exit_code: int | None = None
    for pod in pods:
        if pod.status is None:
            continue
        for cond in pod.status.conditions or []:
            if cond.type == "DisruptionTarget" and cond.status == "True":
                said.append(f"{cond.reason}: {cond.message}" if cond.message else cond.reason)
            if cond.type == "PodScheduled" and cond.status == "False" and cond.message:
                said.append(f"{cond.reason}: {cond.message}")
        if pod.status.reason:  # Evicted, NodeLost
            said.append(f"{pod.status.reason}: {pod.status.message or ''}".rstrip(": "))
        for c in pod.status.container_statuses or []:
            ended = c.state.terminated if c.state is not None else None
            if ended is not None:
                exit_code = ended.exit_code
                if ended.reason and ended.reason not in ("Completed", "Error"):
                    said.append(ended.reason)
    return said, exit_code


def _condition(status: Any) -> str:
    for cond in status.conditions or []:
        if cond.type == "Failed":
            return f"{cond.reason}: {cond.message}"
    return ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return str(exc)
