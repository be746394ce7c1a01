"""kitaru.sleep through a server: the server's sweeper wakes it, a worker that knows only
the server finishes it, and a resume before the wake time leaves it sleeping."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import write_script
from tests.server.conftest import Client

NAP = """
import json, sys
import kitaru
from kitaru import checkpoint, flow

@checkpoint
def first() -> str:
    return "a"

@flow
def nap(seconds: float) -> str:
    x = first()
    kitaru.sleep(seconds)
    return x + "b"

"""

START = """
import json, sys
from napflows import nap

h = nap.run(float(sys.argv[1]))
print(json.dumps({"exec_id": h.exec_id, "status": h.status}))
"""


def test_a_sleep_through_a_server_wakes_by_its_sweeper_and_a_worker_finishes_it(
    client: Client, tmp_path: Path
) -> None:
    write_script(tmp_path / "project" / "napflows.py", NAP)
    script = write_script(tmp_path / "project" / "start.py", START)
    started = client.start(script, "2")
    exec_id = started["exec_id"]
    assert started["status"] == "waiting"
    view = client.cli_json("executions", "get", exec_id)
    assert view["sleeping_until"] and view["waits"][0]["kind"] == "sleep"
    early = client.cli_json("executions", "resume", exec_id)
    assert early["status"] == "waiting" and early["runs"] == 1
    refused = client.cli("executions", "input", exec_id, "sleep", "null")
    assert refused.returncode != 0 and "kitaru.sleep()" in refused.stderr
    time.sleep(3)  # past the wake time, and a sweep (every 0.5 s) after it
    worker = client.cli("worker", "--flows", "napflows", "--until-empty", "--poll", "0.05")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    done = client.cli_json("executions", "get", exec_id)
    assert done["status"] == "completed" and done["result"] == "ab"
    assert [w["status"] for w in done["waits"]] == ["woke"]


def test_a_write_token_cannot_end_a_sleep_early_by_claiming_it_timed_out(
    client: Client, write_token: str, tmp_path: Path
) -> None:
    write_script(tmp_path / "project" / "napflows.py", NAP)
    script = write_script(tmp_path / "project" / "start.py", START)
    exec_id = client.start(script, "3600")["exec_id"]
    # The attacker: a write token, posting the flow's own "my sleep is over" answer.
    with client.server.http(write_token) as http:
        sent = http.post(
            f"/api/v1/executions/{exec_id}/waits/sleep/answer",
            json={"value": None, "timed_out": True},
        )
    assert sent.status_code == 422, sent.text
    view = client.cli_json("executions", "get", exec_id)
    assert view["status"] == "waiting" and view["waits"][0]["status"] == "sleeping"
