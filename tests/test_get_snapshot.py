"""`kitaru executions get` is one snapshot: while a flow commits calls in another process,
every get shows a status and a call list that were true together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kitaru.client import KitaruClient
from tests.conftest import kitaru_cli, write_script
from tests.journal.conftest import fresh_postgres_url

CALLS = 400

BUSY = f"""
import sys
from kitaru import checkpoint, flow

@checkpoint
def step(i: int) -> int:
    return i * i

@flow
def busy() -> int:
    return sum(step(i) for i in range({CALLS}))

if __name__ == "__main__":
    print(busy.run().exec_id)
"""


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)]
)
def test_gets_during_a_busy_flow_each_show_one_moment(tmp_path: Path, backend: str) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}" if backend == "sqlite" else fresh_postgres_url()
    env = {**os.environ, "KITARU_JOURNAL_URL": url}
    script = write_script(tmp_path / "busy.py", BUSY)
    flow = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            text=True)  # fmt: skip
    client = KitaruClient(url)
    try:
        exec_id = ""
        while not exec_id and flow.poll() is None:
            found = client.journal.list_executions(flow="busy", limit=1)
            exec_id = found[0].exec_id if found else ""
        seen, shown = 0, []
        while True:
            view = client.executions.get(exec_id).to_dict()
            keys = [c["key"] for c in view["checkpoints"]]
            # The calls so far, in order, none missing: a prefix of what the flow makes.
            assert keys == [f"step#{i}" if i > 1 else "step" for i in range(1, len(keys) + 1)]
            assert len(keys) >= seen  # never fewer than an earlier get showed
            assert all(c["run"] <= view["runs"] for c in view["checkpoints"])
            seen = len(keys)
            shown.append(seen)
            if view["status"] == "completed":
                assert seen == CALLS and view["result"] == sum(i * i for i in range(CALLS))
                break
            assert view["status"] in ("queued", "running")
    finally:
        flow.wait(timeout=120)
    assert flow.returncode == 0
    # The CLI prints the same snapshot.
    printed = kitaru_cli("executions", "get", exec_id, "--json", env={"KITARU_JOURNAL_URL": url})
    assert printed.returncode == 0 and len(printed.json()["checkpoints"]) == CALLS
    print(f"{len(shown)} gets; calls shown: {shown[:3]} ... {shown[-3:]}")
