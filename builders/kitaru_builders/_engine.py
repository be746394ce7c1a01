"""The Docker engine the builder talks to."""

from __future__ import annotations

import os
from typing import Any

from kitaru import ConfigurationError


def engine(docker_host: str | None) -> Any:
    try:
        import docker
        import docker.errors
    except ImportError:
        raise ConfigurationError(
            'building images needs the Docker SDK; install it with: pip install "kitaru[docker]"'
        ) from None

    address = docker_host or os.environ.get("DOCKER_HOST")
    try:
        client = (
            docker.DockerClient(base_url=address, timeout=600)
            if address
            else docker.from_env(timeout=600)
        )
        client.ping()
    except docker.errors.DockerException as exc:
        raise ConfigurationError(
            f"cannot reach the Docker engine that builds images at "
            f"{address or 'the default socket'} ({exc}); start Docker or set DOCKER_HOST"
        ) from None
    return client
