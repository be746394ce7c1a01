"""`docker`: a container per execution on a Docker engine (`pip install "kitaru[docker]"`).

The container runs with the stack's network (host by default, so a journal and store on
this machine's loopback are reachable). Containers are labelled `kitaru.exec_id` and kept
after they end so that `kitaru executions logs --orchestrator` can read them; one removed
before it took its execution fails it as gone (`missing`: the engine's recent events say
it removed that container).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import docker
import docker.errors

from kitaru import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks import RunStatus, SubmitRequest
from kitaru_orchestrators._env import resolved_environment, short_id


def docker_client(docker_host: str | None) -> docker.DockerClient:
    address = docker_host or os.environ.get("DOCKER_HOST")
    try:
        if address:
            return docker.DockerClient(base_url=address, timeout=120)
        return docker.from_env(timeout=120)
    except docker.errors.DockerException as exc:
        raise ConfigurationError(
            f"setting 'docker_host': cannot reach the Docker engine at "
            f"{address or 'the default socket'} ({exc}); start Docker, or point "
            "--set docker_host=unix:///path/docker.sock (or DOCKER_HOST) at a running engine"
        ) from None


class DockerOrchestrator:
    flavor = "docker"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = docker_client(self.settings.docker_host)
        return self._client

    def check(self) -> None:
        try:
            self.client.ping()
        except docker.errors.DockerException as exc:
            raise ConfigurationError(
                f"setting 'docker_host': the Docker engine does not answer ({exc}); start "
                "Docker or point --set docker_host=... (or DOCKER_HOST) at a running engine"
            ) from None

    def submit(self, request: SubmitRequest) -> str:
        if request.image is None:
            raise ConfigurationError(
                "the docker orchestrator needs an image; the stack has no builder"
            )
        env = resolved_environment(request, self.flavor)
        options: dict[str, Any] = {}
        if self.settings.cpus:
            options["nano_cpus"] = int(self.settings.cpus * 1e9)
        if self.settings.memory:
            options["mem_limit"] = self.settings.memory
        container = self.client.containers.run(
            request.image,
            command=list(request.command),
            environment=env,
            network_mode=self.settings.network,
            working_dir=request.working_dir,
            detach=True,
            # An init process as PID 1: Python as PID 1 would ignore SIGTERM and SIGKILL
            # sent from inside the container, and nothing would reap its children.
            init=True,
            auto_remove=self.settings.remove_containers,
            name=f"kitaru-{short_id(request.exec_id)}-{os.urandom(3).hex()}",
            labels={
                "kitaru.exec_id": request.exec_id,
                "kitaru.stack": request.stack,
                "kitaru.flow": request.flow,
            },
            **options,
        )
        return str(container.id)

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        # A container id (names are refused: any container can be named), labelled
        # with the execution by `submit`; or one this engine removed with that label.
        if not re.fullmatch(r"[0-9a-f]{12,64}", run_id):
            return False
        container = self._container(run_id)
        if container is None:
            return self._removed(run_id, exec_id)
        return bool((container.labels or {}).get("kitaru.exec_id") == exec_id)

    def _removed(self, run_id: str, exec_id: str) -> bool:
        """Whether this engine removed the container `run_id`, labelled with `exec_id`,
        as far as its event history (the latest events, kept in memory) goes. A container
        unknown to an engine that never ran it (another machine's) is not taken for gone."""
        events = self.client.events(
            since=1,
            until=int(time.time()) + 1,
            filters={
                "type": "container",
                "event": "destroy",
                "label": f"kitaru.exec_id={exec_id}",
            },
            decode=True,
        )
        try:
            return any(
                str(event.get("Actor", {}).get("ID", "")).startswith(run_id) for event in events
            )
        finally:
            events.close()

    def _container(self, run_id: str) -> Any:
        try:
            return self.client.containers.get(run_id)
        except docker.errors.NotFound:
            return None

    def status(self, run_id: str) -> RunStatus:
        container = self._container(run_id)
        if container is None:
            return RunStatus("missing", "the container no longer exists")
        state = container.attrs.get("State", {})
        if state.get("Running") or container.status in ("created", "restarting"):
            return RunStatus("running" if state.get("Running") else "pending")
        code = state.get("ExitCode")
        detail = state.get("Error") or ("OOM killed" if state.get("OOMKilled") else "")
        return RunStatus("succeeded" if code == 0 else "failed", detail, exit_code=code)

    def logs(self, run_id: str) -> str:
        container = self._container(run_id)
        if container is None:
            return ""
        data: bytes = container.logs(stdout=True, stderr=True)
        return data.decode(errors="replace")

    def cancel(self, run_id: str) -> None:
        container = self._container(run_id)
        if container is None:
            return
        try:
            container.kill()
        except docker.errors.APIError:
            pass  # it already stopped
