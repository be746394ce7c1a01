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

The service account admission is played too: a pod naming a ServiceAccount the API does
not have is refused (the Job gets no pod and a `FailedCreate` warning event, as the Job
controller records it); otherwise the pod gets the `kube-api-access` volume and the
container the token file at /var/run/secrets/kubernetes.io/serviceaccount (unless the
pod's or its ServiceAccount's `automountServiceAccountToken` is false). `imagePullSecrets` are used as a kubelet uses
them: the credentials of the image's registry in a `kubernetes.io/dockerconfigjson`
Secret sign the pull (a Secret that does not exist is skipped, as the kubelet only warns).

Not played: quotas, scheduling, RBAC."""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

CONTAINER_LABEL = "kitaru.fake-kubelet"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


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
        self.tokens_dir = Path(tempfile.mkdtemp(prefix="kubelet-tokens-"))
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
        refused = self._admission(job)
        if refused is not None:
            self._event(job, "FailedCreate", f"Error creating: {refused}")
            return  # the Job controller tries again later; the Job stays without pods
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
                client.images.pull(spec.image, auth_config=self._pull_auth(pod, spec.image))
                break
            except docker.errors.APIError as exc:
                why = f'failed to pull and unpack image "{spec.image}": {exc.explanation or exc}'
                self._waiting(pod, "ErrImagePull" if attempt < 3 else "ImagePullBackOff", why)
                if attempt == 3:
                    return
                time.sleep(0.5 * (attempt + 1))
        limits = (spec.resources.limits if spec.resources else None) or {}
        mounts = {}
        if any(v["name"].startswith("kube-api-access") for v in pod["spec"].get("volumes", [])):
            mounts[str(self._token_dir(pod))] = {"bind": TOKEN_DIR, "mode": "ro"}
        container = client.containers.run(
            spec.image,
            volumes=mounts,
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

    def _admission(self, job: Any) -> str | None:
        """Why the API refuses the Job's pod, if it does (the ServiceAccount admission)."""
        account = job.spec.template.spec.service_account_name
        if not account or account == "default":
            return None
        try:
            self.orch.core.read_namespaced_service_account(account, self.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            return (
                f'pods "{job.metadata.name}-" is forbidden: error looking up service account '
                f'{self.namespace}/{account}: serviceaccount "{account}" not found'
            )
        return None

    def _automount(self, spec: dict[str, Any]) -> bool:
        """Whether the pod gets the token: its own `automountServiceAccountToken`, else
        its ServiceAccount's, else yes."""
        if spec.get("automountServiceAccountToken") is not None:
            return bool(spec["automountServiceAccountToken"])
        account = spec.get("serviceAccountName")
        if not account or account == "default":
            return True
        found = self.orch.core.read_namespaced_service_account(account, self.namespace)
        return found.automount_service_account_token is not False

    def _event(self, job: Any, reason: str, message: str) -> None:
        name = job.metadata.name
        self.orch.core.create_namespaced_event(
            self.namespace,
            {
                "metadata": {"name": f"{name}.{os.urandom(4).hex()}"},
                "involvedObject": {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name,
                    "namespace": self.namespace,
                },
                "reason": reason,
                "message": message,
                "type": "Warning",
                "source": {"component": "job-controller"},
            },
        )

    def _token_dir(self, pod: dict[str, Any]) -> Path:
        """The service account's token and namespace, as the projected volume holds them."""
        where = self.tokens_dir / pod["metadata"]["name"]
        where.mkdir(parents=True, exist_ok=True)
        account = pod["spec"].get("serviceAccountName") or "default"
        (where / "token").write_text(f"token-of-{self.namespace}-{account}")
        (where / "namespace").write_text(self.namespace)
        return where

    def _pull_auth(self, pod: dict[str, Any], image: str) -> dict[str, str] | None:
        """The credentials for the image's registry from the pod's imagePullSecrets."""
        host = image.split("/", 1)[0]
        for ref in pod["spec"].get("imagePullSecrets") or []:
            try:
                secret = self.orch.core.read_namespaced_secret(ref["name"], self.namespace)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                continue  # the kubelet warns and pulls without it
            raw = (secret.data or {}).get(".dockerconfigjson")
            if raw is None:
                continue
            entry = json.loads(base64.b64decode(raw)).get("auths", {}).get(host)
            if entry is None:
                continue
            if "auth" in entry:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            else:
                user, password = entry["username"], entry["password"]
            return {"username": user, "password": password}
        return None

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
        if self._automount(template["spec"]):
            # What the ServiceAccount admission adds: the token as a projected volume.
            volume = f"kube-api-access-{os.urandom(3).hex()[:5]}"
            pod["spec"].setdefault("volumes", []).append(
                {
                    "name": volume,
                    "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]},
                }
            )
            for container in pod["spec"]["containers"]:
                container.setdefault("volumeMounts", []).append(
                    {"name": volume, "mountPath": TOKEN_DIR, "readOnly": True}
                )
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
