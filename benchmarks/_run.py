"""Running workers: one fresh process and one fresh data directory per measurement."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _envs

WORKERS = Path(__file__).resolve().parent / "workers"
SCRIPTS = {
    "kitaru": "w_kitaru.py",
    "dbos": "w_dbos.py",
    "langgraph": "w_langgraph.py",
    "prefect": "w_prefect.py",
    "kitaru021": "w_kitaru021.py",
    "floor": "w_floor.py",
}


class WorkerError(Exception):
    """A worker failed; the message ends with the tail of what it printed."""


@dataclass
class Workdir:
    """Where the data directories of one benchmark run live."""

    root: Path
    counter: int = 0

    def fresh(self, name: str) -> Path:
        self.counter += 1
        path = self.root / f"{self.counter:04d}-{name}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def drop(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)


def product_env(product: str, data: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker of `product` runs with: its state lives in `data` only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KITARU_", "PREFECT_"))}
    # Users run with compiled bytecode; a shell that turns it off would make every
    # import look slower than it is, so the workers write and use .pyc files.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["BENCH_DATA"] = str(data)
    if product == "kitaru":
        env["KITARU_HOME"] = str(data)
    elif product == "kitaru021":
        # ZenML keeps its store under the user's config directory: a private HOME per run.
        env["HOME"] = str(data)
        env["KITARU_ANALYTICS_OPT_IN"] = "false"
        env["ZENML_ANALYTICS_OPT_IN"] = "false"
        env["COLUMNS"] = "200"
    elif product == "prefect":
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
    env.update(extra or {})
    return env


def _kill_group(proc: subprocess.Popen[Any]) -> None:
    """Stop whatever a worker left behind (a peer's helper server): its own process group."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.05)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float

    def result(self) -> dict[str, Any]:
        lines = [ln for ln in self.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            raise WorkerError(f"no result (exit {self.returncode}):\n{self.tail()}")
        data: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
        return data

    def tail(self) -> str:
        text = (self.stderr + "\n" + self.stdout).strip()
        return "\n".join(text.splitlines()[-15:])


def run(
    argv: list[str], env: dict[str, str], *, timeout: float = 900, cwd: Path | None = None
) -> Finished:
    """Run a process in its own group, time it from spawn to exit, reap its children.

    Output goes to files, not pipes: a helper process the worker started (Prefect's
    API server) keeps a pipe open after the worker itself died, which would make a
    reader wait for it.
    """
    if cwd is None and env.get("BENCH_DATA") and os.path.isdir(env["BENCH_DATA"]):
        # Never the repository: `python -c "import kitaru"` would find this checkout's
        # kitaru on sys.path[0] instead of the one installed in the peer's venv.
        cwd = Path(env["BENCH_DATA"])
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            proc.wait()
            err.write(f"\n(killed after {timeout:.0f} s)")
        wall = time.perf_counter() - t0
        _kill_group(proc)
        out.seek(0)
        err.seek(0)
        return Finished(proc.returncode, out.read(), err.read(), wall)


def worker_argv(product: str, task: str, spec: dict[str, Any]) -> list[str]:
    return [_envs.python_for(product), str(WORKERS / SCRIPTS[product]), task, json.dumps(spec)]


def call(
    product: str,
    task: str,
    spec: dict[str, Any],
    env: dict[str, str],
    *,
    timeout: float = 900,
    expect_rc: int = 0,
) -> Finished:
    done = run(worker_argv(product, task, spec), env, timeout=timeout)
    if done.returncode != expect_rc:
        raise WorkerError(
            f"{product} {task}: exit {done.returncode}, expected {expect_rc}:\n{done.tail()}"
        )
    return done


def kitaru_cli(args: list[str], env: dict[str, str], timeout: float = 300) -> Finished:
    return run([sys.executable, "-m", "kitaru", *args], env, timeout=timeout)


def progress(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)
