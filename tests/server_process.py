"""A real `kitaru server start` process on a free port, for tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx


class ServerProcess:
    def __init__(
        self,
        journal_url: str,
        workdir: Path,
        *,
        store: str | None = None,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.journal_url = journal_url
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.home = workdir / "server-home"
        self.store = store or (workdir / "server-store").as_uri()
        self.log_path = workdir / "server.log"
        base = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
        base.update({"KITARU_HOME": str(self.home), "KITARU_TEST_SERVICES": ""})
        for key in ("KITARU_TEST_POSTGRES_URL",):
            if key in os.environ:
                base[key] = os.environ[key]
        self.env = {**base, **(env or {})}
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kitaru",
                "server",
                "start",
                "--port",
                "0",
                "--journal",
                journal_url,
                "--artifact-store",
                self.store,
                *args,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        self.url = self._wait_for_port()

    def _wait_for_port(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            found = re.search(r"listening on (http://\S+)", text)
            if found:
                url = found.group(1)
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    return url
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.05)
        raise RuntimeError(f"the server did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A kitaru command on the server's machine (its journal, its home)."""
        return subprocess.run(
            [sys.executable, "-m", "kitaru", *args],
            env={**self.env, "KITARU_JOURNAL_URL": self.journal_url, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def token(self, scope: str, name: str | None = None) -> str:
        result = self.cli(
            "server", "token", "create", "--scope", scope, "--journal", self.journal_url,
            "--json", *(["--name", name] if name else []),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return str(json.loads(result.stdout)["token"])

    def client_env(self, token: str, home: Path) -> dict[str, str]:
        """What a client on another machine sets: the server and a token, nothing else."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
        env.update({"KITARU_SERVER_URL": self.url, "KITARU_API_TOKEN": token})
        env["KITARU_HOME"] = str(home)
        return env

    def http(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def wait_for(self, token: str, exec_id: str, statuses: set[str], timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        with self.http(token) as http:
            while True:
                view = http.get(f"/api/v1/executions/{exec_id}").json()
                if view["status"] in statuses or time.monotonic() > deadline:
                    return view
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
