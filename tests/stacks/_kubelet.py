"""A small test kubelet and Job controller for the Kubernetes API emulator
(scripts/services/fake-k8s.sh), which stores objects but runs nothing.

For each new Job it does what the Job controller and a kubelet do, as far as a local
Docker engine can: creates a Pod (labelled `job-name`, owned by the Job), resolves the
container's environment (`value`, and `secretKeyRef` from the Secrets in the API: a
missing Secret or key leaves the pod waiting in `CreateContainerConfigError`), pulls
the image (a pull that fails is tried again, in `ErrImagePull`, then left waiting in
`ImagePullBackOff`), runs the container
with the resource limits, writes its output where the emulator serves `pods/NAME/log`,
and reports the pod's and the Job's status as the real ones do (`terminated` with exit
code and reason, `Complete`/`Failed` conditions). A Job deleted while it runs has its
container killed and its pods deleted (the garbage collector's part). `preempt` plays
the scheduler preempting a pod: killed, marked `DisruptionTarget`.

Not played: admission (service accounts, quotas), scheduling, imagePullSecrets (the
local registry needs none; the names are checked to exist as a warning would)."""

from __future__ import annotations

import base64
import os
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

CONTAINER_LABEL = "kitaru.fake-kubelet"


def _quantity_bytes(text: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text.removesuffix(unit)) * factor)
    return int(text)


def _quantity_cpus(text: str) -> float:
    return float(text.removesuffix("m")) / 1000 if text.endswith("m") else float(text)


class FakeKubelet:
    def __init__(self, orch: Any, logs_dir: str, namespace: str = "default") -> None:
        self.orch = orch
        self.namespace = namespace
        self.logs_dir = Path(logs_dir)
        self.seen: set[str] = set()
        self.containers: dict[str, Any] = {}  # Job name -> its Docker container
        self.preempted: set[str] = set()
        self.deleted: set[str] = set()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.errors: list[BaseException] = []

    # The loop: new Jobs are started, deleted ones stopped.

    def loop(self) -> None:
        while not self.stop.wait(0.3):
            try:
                jobs = self.orch.batch.list_namespaced_job(self.namespace).items
                names = {j.metadata.name for j in jobs}
                for job in jobs:
                    if job.metadata.name not in self.seen:
                        self.seen.add(job.metadata.name)
                        threading.Thread(target=self.run, args=(job,), daemon=True).start()
                for name, container in list(self.containers.items()):
                    if name not in names:
                        self.deleted.add(name)
                        self._kill(container)
                        self._delete_pods(name)
                        del self.containers[name]
            except Exception as exc:
                self.errors.append(exc)

    # One Job.

    def run(self, job: Any) -> None:
        try:
            self._run(job)
        except Exception as exc:
            self.errors.append(exc)

    def _run(self, job: Any) -> None:
        import docker

        name = job.metadata.name
        pod = self._create_pod(job)
        self._job_status(name, {"active": 1, "ready": 0})
        spec = job.spec.template.spec.containers[0]
        env, config_error = self._environment(spec)
        if config_error is not None:
            self._waiting(pod, "CreateContainerConfigError", config_error)
            return
        client = docker.from_env()
        # A kubelet retries a failed pull (ErrImagePull), then backs off between tries
        # (ImagePullBackOff): a pull that fails once under load is no failed run.
        for attempt in range(4):
            try:
                client.images.pull(spec.image)
                break
            except docker.errors.APIError as exc:
                why = f'failed to pull and unpack image "{spec.image}": {exc.explanation or exc}'
                self._waiting(pod, "ErrImagePull" if attempt < 3 else "ImagePullBackOff", why)
                if attempt == 3:
                    return
                time.sleep(0.5 * (attempt + 1))
        limits = (spec.resources.limits if spec.resources else None) or {}
        container = client.containers.run(
            spec.image,
            command=spec.command,
            environment=env,
            working_dir=spec.working_dir,
            network_mode="host",
            init=True,
            detach=True,
            labels={CONTAINER_LABEL: name},
            mem_limit=_quantity_bytes(limits["memory"]) if "memory" in limits else None,
            nano_cpus=int(_quantity_cpus(limits["cpu"]) * 1e9) if "cpu" in limits else None,
        )
        self.containers[name] = container
        self._pod_status(
            pod,
            {
                "phase": "Running",
                "containerStatuses": [
                    {
                        "name": spec.name,
                        "image": spec.image,
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}},
                    }
                ],
            },
        )
        code = container.wait()["StatusCode"]
        container.reload()
        self._write_log(pod, spec.name, container.logs(stdout=True, stderr=True))
        if name in self.deleted:
            return  # the Job was deleted: its pod is gone with it
        oom = bool(container.attrs.get("State", {}).get("OOMKilled"))
        reason = "OOMKilled" if oom else ("Completed" if code == 0 else "Error")
        conditions = []
        if name in self.preempted:
            conditions.append(
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "PreemptionByScheduler",
                    "message": "Preempted in order to admit critical pod",
                }
            )
        self._pod_status(
            pod,
            {
                "phase": "Succeeded" if code == 0 else "Failed",
                "conditions": conditions,
                "containerStatuses": [
                    {
                        "name": spec.name,
                        "image": spec.image,
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": code, "reason": reason}},
                    }
                ],
            },
        )
        if code == 0:
            self._job_status(
                name,
                {
                    "active": 0,
                    "succeeded": 1,
                    "conditions": [{"type": "Complete", "status": "True"}],
                },
            )
        else:
            self._job_status(
                name,
                {
                    "active": 0,
                    "failed": 1,
                    "conditions": [
                        {
                            "type": "Failed",
                            "status": "True",
                            "reason": "BackoffLimitExceeded",
                            "message": "Job has reached the specified backoff limit",
                        }
                    ],
                },
            )
        container.remove(force=True)

    def preempt(self, job_name: str) -> None:
        """What the scheduler does to make room for a higher-priority pod."""
        self.preempted.add(job_name)
        self._kill(self.containers[job_name])

    # The Kubernetes side.

    def _create_pod(self, job: Any) -> dict[str, Any]:
        name = job.metadata.name
        template = self.orch.api.sanitize_for_serialization(job.spec.template)
        labels = {
            **(template.get("metadata", {}).get("labels") or {}),
            "job-name": name,
            "batch.kubernetes.io/job-name": name,
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-{os.urandom(3).hex()[:5]}",
                "namespace": self.namespace,
                "labels": labels,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": name,
                        "uid": job.metadata.uid or name,
                        "controller": True,
                    }
                ],
            },
            "spec": template["spec"],
            "status": {"phase": "Pending"},
        }
        self.orch.core.create_namespaced_pod(self.namespace, pod)
        return pod

    def _environment(self, spec: Any) -> tuple[dict[str, str], str | None]:
        env: dict[str, str] = {}
        for var in spec.env or []:
            if var.value is not None:
                env[var.name] = var.value
                continue
            ref = var.value_from.secret_key_ref if var.value_from else None
            if ref is None:
                continue
            try:
                secret = self.orch.core.read_namespaced_secret(ref.name, self.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                return env, f'secret "{ref.name}" not found'
            data = secret.data or {}
            if ref.key not in data:
                return env, f"couldn't find key {ref.key} in Secret {self.namespace}/{ref.name}"
            env[var.name] = base64.b64decode(data[ref.key]).decode()
        return env, None

    def _waiting(self, pod: dict[str, Any], reason: str, message: str) -> None:
        spec = pod["spec"]["containers"][0]
        self._pod_status(
            pod,
            {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": spec["name"],
                        "image": spec["image"],
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"waiting": {"reason": reason, "message": message}},
                    }
                ],
            },
        )

    def _pod_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        self.orch.core.patch_namespaced_pod_status(
            pod["metadata"]["name"], self.namespace, {"status": status}
        )

    def _job_status(self, name: str, status: dict[str, Any]) -> None:
        try:
            self.orch.batch.patch_namespaced_job_status(name, self.namespace, {"status": status})
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile
                raise

    def _write_log(self, pod: dict[str, Any], container: str, data: bytes) -> None:
        path = self.logs_dir / self.namespace / pod["metadata"]["name"] / f"{container}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def _delete_pods(self, job_name: str) -> None:
        for pod in self.orch.core.list_namespaced_pod(self.namespace).items:
            if (pod.metadata.labels or {}).get("job-name") == job_name:
                self.orch.core.delete_namespaced_pod(pod.metadata.name, self.namespace)

    @staticmethod
    def _kill(container: Any) -> None:
        import docker

        try:
            container.kill()
        except docker.errors.APIError:
            pass  # it already ended
