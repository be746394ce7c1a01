"""Kitaru builders: the locked container image an orchestrator runs.

Registered under the `kitaru.builders` entry points; `docker` builds on a Docker engine
through the Docker SDK and pushes to the stack's registry.
"""

from kitaru_builders._docker import DockerBuilder, dockerfile
from kitaru_builders._lock import BuildError

__all__ = ["BuildError", "DockerBuilder", "dockerfile"]
