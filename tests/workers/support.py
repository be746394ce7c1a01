"""Real `kitaru worker` processes over a journal, and the flows they run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitaru.journal import ExecutionRecord, Journal

# Every body writes "<exec_id> <key> <nonce>" to the ledger when it runs and returns the
# nonce: the committed output names the run that was kept, the ledger every run.
FLOWS = """
import os, time, uuid
import kitaru
from kitaru import checkpoint, flow

LEDGER = os.environ["KITARU_TEST_LEDGER"]


def _note(key: str) -> str:
    ctx = kitaru._runtime.current()
    nonce = uuid.uuid4().hex[:8]
    with open(LEDGER, "a") as f:
        f.write(f"{ctx.exec_id} {key} {nonce}\\n")
    return nonce


@checkpoint
def step(i: int, pause: float) -> str:
    time.sleep(pause)
    return _note(f"step#{i}")


@flow
def steps(n: int, pause: float = 0.02) -> list[str]:
    return [step(i, pause) for i in range(n)]


@flow
def approve(i: int) -> list[str]:
    ok = kitaru.wait("ok", schema=bool, question="go on?")
    return [step(i, 0.02), str(ok)]


@flow
def timed(i: int, timeout: float = 1) -> str:
    return str(kitaru.wait("ok", schema=bool, question="go on?", timeout=timeout, default=False))


@flow
def dozes(seconds: float) -> str:
    before = step(0, 0)
    kitaru.sleep(seconds)
    return before + " " + step(1, 0)


@checkpoint
def die(code: int) -> str:
    os._exit(code)


@flow
def crashes(code: int = 9) -> str:
    return die(code)
"""


def write_flows(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "wflows.py"
    path.write_text(textwrap.dedent(FLOWS))
    return path


class Workers:
    """Worker processes started in `folder` (where the flows' module is), on one journal."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = env
        self.procs: list[subprocess.Popen[str]] = []
        self.logs: list[Path] = []

    def start(self, *args: str, name: str | None = None) -> subprocess.Popen[str]:
        log = self.folder / f"worker-{len(self.procs)}.log"
        out = open(log, "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "kitaru", "worker", "--flows", "wflows", "--json",
             "--poll", "0.05", *(["--name", name] if name else []), *args],
            cwd=self.folder, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        self.logs.append(log)
        self._wait_started(log, proc)
        return proc

    def _wait_started(self, log: Path, proc: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 30
        while '"event": "started"' not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

    def events(self, i: int) -> list[dict[str, Any]]:
        out = []
        for line in self.logs[i].read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def output(self) -> str:
        return "\n".join(f"--- worker {i}\n{p.read_text()}" for i, p in enumerate(self.logs))

    def stop(self, timeout: float = 60) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_until(check: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s: {what()}")
        time.sleep(0.1)


def statuses(journal: Journal, ids: list[str]) -> dict[str, str]:
    return {i: r.status for i in ids if (r := journal.get_execution(i)) is not None}


def max_overlap(records: list[ExecutionRecord]) -> int:
    """The most executions ever running at once, from claim to end times."""
    edges: list[tuple[float, int]] = []
    for r in records:
        assert r.claimed_at is not None and r.ended_at is not None, r
        edges += [(r.claimed_at, 1), (r.ended_at, -1)]
    running = most = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        running += step
        most = max(most, running)
    return most


def ledger(path: Path) -> dict[tuple[str, str], list[str]]:
    runs: dict[tuple[str, str], list[str]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            exec_id, key, nonce = line.split()
            runs.setdefault((exec_id, key), []).append(nonce)
    return runs


def env_for(journal_url: str, home: Path, ledger_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KITARU_")}
    env.update(
        KITARU_HOME=str(home),
        KITARU_JOURNAL_URL=journal_url,
        KITARU_TEST_LEDGER=str(ledger_path),
        KITARU_LEASE_SECONDS="6",
    )
    if "KITARU_TEST_POSTGRES_URL" in os.environ:
        env["KITARU_TEST_POSTGRES_URL"] = os.environ["KITARU_TEST_POSTGRES_URL"]
    return env


def env_through_server(tmp_path: Path, url: str, token: str) -> dict[str, str]:
    """A worker's (or an application's) environment with a server and no database."""
    env = env_for("", tmp_path / "home", tmp_path / "ledger.txt")
    del env["KITARU_JOURNAL_URL"]
    env.update(KITARU_SERVER_URL=url, KITARU_API_TOKEN=token)
    return env


def submit(folder: Path, env: dict[str, str], call: str, count: int = 1) -> list[str]:
    """Submit `count` executions with `call` (an expression on module wflows, `i` the
    index) from a separate process, as an application would; their ids."""
    code = (
        f"import json, wflows\nprint(json.dumps([wflows.{call}.exec_id for i in range({count})]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ids: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return ids


def kitaru(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kitaru", *args], cwd=folder, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def skewed(env: dict[str, str], folder: Path, seconds: float) -> dict[str, str]:
    """`env` for a process whose clock runs `seconds` ahead of this machine's (a host
    whose clock drifted): a sitecustomize shifts `time.time` at interpreter start."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import time\n"
        f"_real, _real_ns, _skew = time.time, time.time_ns, {float(seconds)!r}\n"
        "time.time = lambda: _real() + _skew\n"
        "time.time_ns = lambda: _real_ns() + int(_skew * 1e9)\n"
    )
    path = [str(folder), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(path)}
