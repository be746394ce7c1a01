"""A server that restarts under a running flow: the flow's requests wait for it
(KITARU_SERVER_RETRY_SECONDS) and the execution completes, every checkpoint call and log
line recorded once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from kitaru.journal import open_journal
from tests.conftest import write_script
from tests.journal.conftest import fresh_postgres_url
from tests.server_process import ServerProcess

STEPS = """
import json, sys, time
from kitaru import checkpoint, flow


@checkpoint
def step(i: int) -> int:
    print("step", i)
    time.sleep(0.3)
    return i


@flow
def steady() -> int:
    return sum(step(i) for i in range(12))


if __name__ == "__main__":
    handle = steady.run()
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


def test_a_flow_rides_out_a_server_restart(tmp_path: Path) -> None:
    journal = fresh_postgres_url()
    workdir = tmp_path / "server"
    first = ServerProcess(journal, workdir, args=("--sweep-interval", "0"))
    port = first.url.rsplit(":", 1)[1]
    token = first.token("write", name="runner")
    script = write_script(tmp_path / "steady.py", STEPS)
    env = first.client_env(token, tmp_path / "client-home")
    flow = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    second = None
    try:
        # Let a few calls commit, then take the server away for a while.
        direct = open_journal(journal)
        deadline = time.monotonic() + 30
        while not any(direct.calls(e.exec_id) for e in direct.list_executions()):
            assert time.monotonic() < deadline, "the flow did not start"
            time.sleep(0.05)
        first.stop()
        with pytest.raises(httpx.ConnectError):
            httpx.get(first.url + "/health", timeout=2)
        time.sleep(3)
        second = ServerProcess(journal, workdir, args=("--sweep-interval", "0", "--port", port))
        out, err = flow.communicate(timeout=120)
    finally:
        if flow.poll() is None:
            flow.kill()
        if second is not None:
            second.stop()
    assert flow.returncode == 0, err.decode()
    started = json.loads(out.decode().strip().splitlines()[-1])
    assert started["status"] == "completed"
    calls = direct.calls(started["exec_id"])
    keys = [c.key for c in calls]
    assert keys == ["step"] + [f"step#{i}" for i in range(2, 13)]
    assert all(c.run == 1 for c in calls)  # one run: nothing ran twice
    printed = [g.text for g in direct.logs(started["exec_id"]) if g.text.startswith("step")]
    assert sorted(printed) == sorted(f"step {i}\n" for i in range(12))
