"""The `local` orchestrator in `mode=subprocess`: one background process per execution
on this machine.

It is part of the core (no extra), like the `local` stack it runs: a flow started on
it needs nothing but kitaru, and no project around it since nothing is built. (In
`mode=in_process` no orchestrator is involved: the flow runs in the process that starts
it.)
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

from kitaru import _config
from kitaru._errors import ConfigurationError, KitaruUsageError
from kitaru.journal import StackRecord
from kitaru.stacks._contracts import RunStatus, SubmitRequest

_children: dict[int, subprocess.Popen[bytes]] = {}

# `pid:<pid>:<exec_id>`; an execution id names a file, so no separators (as the server
# accepts them).
_RUN_ID = re.compile(r"pid:([0-9]{1,10}):([A-Za-z0-9_][\w.#@+=,~-]{0,199})")


def _log_path(exec_id: str) -> Path:
    return _config.home() / "logs" / f"{exec_id}.log"


def parse_run_id(run_id: str) -> tuple[int, str]:
    """(pid, exec_id) of a run this orchestrator could have started; a usage error for
    anything else: pid 0 or 1, this process, a path in place of the execution id."""
    found = _RUN_ID.fullmatch(run_id)
    pid = int(found.group(1)) if found else 0
    if found is None or pid <= 1 or pid == os.getpid() or ".." in found.group(2):
        raise KitaruUsageError(f"{run_id!r} is not a run id of the local orchestrator")
    return pid, found.group(2)


def _command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        try:
            shown = subprocess.run(
                ["ps", "-o", "args=", "-p", str(pid)],
                check=False,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return shown.split()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def runs_execution(pid: int, exec_id: str) -> bool:
    """Whether `pid` leads its own process group and runs `kitaru run-execution
    exec_id`: what `submit` starts, and the only thing `cancel` stops."""
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        if os.getpgid(pid) != pid:
            return False
    except OSError:
        return False
    argv = _command_line(pid)
    return any(
        argv[i : i + 4] == ["-m", "kitaru", "run-execution", exec_id] for i in range(len(argv))
    )


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

    def is_run_of(self, run_id: str, exec_id: str) -> bool:
        try:
            return parse_run_id(run_id)[1] == exec_id
        except KitaruUsageError:
            return False

    def status(self, run_id: str) -> RunStatus:
        pid, _exec_id = parse_run_id(run_id)
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
        path = _log_path(parse_run_id(run_id)[1])
        return path.read_text(errors="replace") if path.is_file() else ""

    def cancel(self, run_id: str) -> None:
        import signal

        pid, exec_id = parse_run_id(run_id)
        if not runs_execution(pid, exec_id):
            return  # ended already, or the pid is another process's now: never signal it
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
