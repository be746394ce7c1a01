"""One real server process per test module, on a fresh PostgreSQL database, with a
write and a read token; clients reach it only through KITARU_SERVER_URL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.journal.conftest import fresh_postgres_url
from tests.server_process import ServerProcess


def running_server(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[ServerProcess]:
    """A server on a fresh PostgreSQL database for a module's tests, stopped after them."""
    proc = ServerProcess(fresh_postgres_url(), tmp_path_factory.mktemp("server"), args=args)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running_server(tmp_path_factory, "--sweep-interval", "0.5", "--max-upload-mb", "1")


@pytest.fixture(scope="module")
def write_token(server: ServerProcess) -> str:
    return server.token("write", name="tests")


@pytest.fixture(scope="module")
def admin_token(server: ServerProcess) -> str:
    return server.token("admin", name="operator")


@pytest.fixture(scope="module")
def read_token(server: ServerProcess) -> str:
    return server.token("read", name="viewer")


class Client:
    """A machine that knows only the server's URL and a token."""

    def __init__(self, server: ServerProcess, token: str, home: Path) -> None:
        self.server = server
        self.env = server.client_env(token, home)
        self.home = home
        # Where its kitaru commands run: the folder of the last script it ran, as a
        # developer works in their project (a flow read from a server is loaded only
        # from the project a command runs in).
        self.project: Path | None = None

    def python(self, script: Path, *args: str, env: dict[str, str] | None = None) -> Any:
        self.project = script.parent
        return subprocess.run(
            [sys.executable, str(script), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, script: Path, *args: str) -> dict[str, Any]:
        """Run a flow script; its last line is {"exec_id", "status"}."""
        result = self.python(script, *args)
        assert result.returncode == 0, result.stderr
        started: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return started

    def cli(self, *args: str, cwd: Path | None = None) -> Any:
        """A kitaru command, run in `cwd` (default: the project)."""
        return subprocess.run(
            [sys.executable, "-m", "kitaru", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd or self.project,
        )

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture
def client(server: ServerProcess, write_token: str, tmp_path: Path) -> Client:
    return Client(server, write_token, tmp_path / "client-home")
