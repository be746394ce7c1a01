"""The container a Docker stack started for an execution, found by its `kitaru.exec_id`
label as soon as it exists (or once it exited)."""

from __future__ import annotations

import time
from typing import Any


def container_of(
    exec_id: str, *, docker_host: str | None = None, exited: bool = False, timeout: float = 120
) -> dict[str, Any]:
    """The engine's description of the container, polled every 50 ms: stacks that remove
    containers when they end (`remove_containers=true`) leave it there only while it runs."""
    import docker

    client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.containers.list(
            all=True, filters={"label": f"kitaru.exec_id={exec_id}"}, ignore_removed=True
        )
        if found and (not exited or found[0].status == "exited"):
            return dict(found[0].attrs)
        time.sleep(0.05)
    state = "exited" if exited else "started"
    raise AssertionError(f"no container of execution {exec_id} {state} within {timeout} s")
