"""Shared fixtures: every test gets its own KITARU_HOME, and helpers to run real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kitaru.artifacts
import kitaru.journal

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def kitaru_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "kitaru-home"
    monkeypatch.setenv("KITARU_HOME", str(home))
    for var in (
        "KITARU_JOURNAL_URL",
        "KITARU_ARTIFACT_STORE",
        "KITARU_DURABILITY",
        "KITARU_STACK",
        "KITARU_SERVER_URL",
        "KITARU_API_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    kitaru.journal.reset_for_tests()
    kitaru.artifacts.reset_for_tests()
    yield home
    kitaru.journal.reset_for_tests()
    kitaru.artifacts.reset_for_tests()


# Test directories whose modules run containers on the test engine.
_ENGINE_DIRS = ("stacks", "deployments", "server", "infra")


@pytest.fixture(scope="module", autouse=True)
def tidy_test_engine(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a module that used the test engine, its stopped containers and untagged images
    go: on CI's small disk they added up to gigabytes. Only when scripts/test.sh owns the
    engine (KITARU_TIDY_TEST_ENGINE=1): an engine shared by other runs keeps its state."""
    yield
    if os.environ.get("KITARU_TIDY_TEST_ENGINE") != "1" or not os.environ.get("DOCKER_HOST"):
        return
    if Path(str(request.path)).parent.name not in _ENGINE_DIRS:
        return
    for command in (["container", "prune", "-f"], ["image", "prune", "-f"]):
        try:
            subprocess.run(["docker", *command], capture_output=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return


class Proc:
    """A finished subprocess."""

    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.returncode = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<Proc rc={self.returncode}\nstdout={self.stdout}\nstderr={self.stderr}>"


def run_python(
    script: Path,
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Proc:
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Proc(result)


def kitaru_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> Proc:
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "kitaru", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Proc(result)


def write_script(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path
