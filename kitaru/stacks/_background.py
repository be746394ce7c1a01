"""The `local` orchestrator in `mode=subprocess`: one background process per execution
on this machine.

It is part of the core (no extra), like the `local` stack it runs: a flow started on
it needs nothing but kitaru, and no project around it since nothing is built. (In
`mode=in_process` no orchestrator is involved: the flow runs in the process that starts
it.)
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from kitaru import _config
from kitaru._errors import ConfigurationError
from kitaru.journal import StackRecord
from kitaru.stacks._contracts import RunStatus, SubmitRequest

_children: dict[int, subprocess.Popen[bytes]] = {}


def _log_path(exec_id: str) -> Path:
    return _config.home() / "logs" / f"{exec_id}.log"


def resolved_environment(request: SubmitRequest, flavor: str) -> dict[str, str]:
    """Plain variables plus `env:` references read here; for platforms with no secret store."""
    env = dict(request.environment)
    for name, ref in request.secrets.items():
        if ref.kind != "env":
            raise ConfigurationError(
                f"secret_environment.{name}={ref}: the {flavor} orchestrator has no secret "
                f"store to read it from; use env:VAR_NAME (read on the submitting machine)"
            )
        env[name] = ref.resolve_env(what=f"secret_environment.{name}")
    return env


class LocalOrchestrator:
    flavor = "local"

    def __init__(self, stack: StackRecord, settings: Any) -> None:
        self.stack = stack
        self.settings = settings

    def check(self) -> None:
        return None

    def submit(self, request: SubmitRequest) -> str:
        env = {**os.environ, **resolved_environment(request, self.flavor)}
        path = _log_path(request.exec_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as out:
            proc = subprocess.Popen(
                list(request.command),
                cwd=request.working_dir or None,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _children[proc.pid] = proc
        return f"pid:{proc.pid}:{request.exec_id}"

    def status(self, run_id: str) -> RunStatus:
        pid = int(run_id.split(":")[1])
        child = _children.get(pid)
        if child is not None:
            code = child.poll()
            if code is None:
                return RunStatus("running")
            return RunStatus("succeeded" if code == 0 else "failed", exit_code=code)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return RunStatus("failed", "the process is gone")
        except PermissionError:
            pass
        return RunStatus("running")

    def logs(self, run_id: str) -> str:
        path = _log_path(run_id.split(":", 2)[2])
        return path.read_text(errors="replace") if path.exists() else ""

    def cancel(self, run_id: str) -> None:
        import signal

        pid = int(run_id.split(":")[1])
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
