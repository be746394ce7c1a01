"""Object stores' bad minutes: the chaos proxy (tests/chaos_proxy.py) between a flow
process and each store emulator resets connections at random while checkpoints write
outputs large enough to go to the store. Each SDK's retries (one policy:
kitaru/artifacts/_object.py) carry every write through; every body runs once and every
output the journal records reads back whole. A store away for a few retries is ridden
out; one that stays away fails the call with one line and records nothing that points at
missing bytes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.artifacts.backends import Backend, make
from tests.chaos_proxy import ChaosProxy
from tests.conftest import REPO, kitaru_cli, run_python, write_script

pytestmark = pytest.mark.services

FLOW = """
import json, os, sys
from kitaru import checkpoint, flow

SIDE = os.environ["SIDE"]

@checkpoint
def step(i: int) -> str:
    fd = os.open(SIDE, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{i}\\n".encode())
    os.close(fd)
    return f"{i:05d}" * 6000  # 30 KB: above the inline limit, so the store holds it

@flow
def stored(n: int) -> int:
    return sum(int(step(i)[:5]) for i in range(n))

if __name__ == "__main__":
    handle = stored.run(int(sys.argv[1]))
    print(json.dumps({"exec_id": handle.exec_id, "status": handle.status}))
"""


def _through(backend: Backend, port: int) -> dict[str, str]:
    """The backend's environment with its endpoint moved to the proxy's port."""
    env = backend.subprocess_env()
    for var in (
        "KITARU_S3_ENDPOINT_URL",
        "STORAGE_EMULATOR_HOST",
        "AZURE_STORAGE_CONNECTION_STRING",
    ):
        if var in env:
            env[var] = re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", env[var])
    return env


def _upstream_port(backend: Backend) -> int:
    found = re.search(r"127\.0\.0\.1:(\d+)", json.dumps(backend.env))
    assert found, backend.env
    return int(found.group(1))


@pytest.mark.parametrize("name", ["s3-moto", "gcs", "azure"])
def test_store_writes_ride_out_random_resets(
    name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    backend = make(name, tmp_path_factory)
    script = write_script(tmp_path / "stored.py", FLOW)
    side = tmp_path / "side.txt"
    n = 150
    # A reset every 100 to 500 ms, five at most: on a loaded machine a write can take
    # longer than a shorter span (20-100 ms, then 50-250 ms), and all 6 attempts the SDK
    # makes of one write were reset in turn (Azure, in CI, once in several runs). Fewer
    # resets than attempts leave every write a way through, however slow the machine.
    with ChaosProxy(_upstream_port(backend), reset_every=(0.1, 0.5), max_resets=5, seed=7) as proxy:
        env = {**_through(backend, proxy.port), "SIDE": str(side),
               "KITARU_ARTIFACT_STORE": backend.uri}  # fmt: skip
        proc = run_python(script, str(n), env=env, timeout=600)
    assert proc.returncode == 0, proc
    # How many resets land depends on how long the SDK keeps each connection: a loaded
    # machine saw 1 to 3 in 60 writes. One is enough to prove the writes rode it out.
    assert proxy.resets >= 1, "the proxy did not get in the way: nothing was proved"
    assert json.loads(proc.stdout)["status"] == "completed"
    ran = Counter(side.read_text().split())
    assert len(ran) == n and set(ran.values()) == {1}
    # Every recorded output reads back whole (its hash is checked on read), directly.
    direct = {**backend.subprocess_env(), "KITARU_ARTIFACT_STORE": backend.uri}
    exec_id = json.loads(proc.stdout)["exec_id"]
    listed = kitaru_cli("artifacts", "list", exec_id, "--json", env=direct)
    assert listed.returncode == 0, listed
    outputs = [a for a in listed.json() if a["producer"] == "checkpoint"]
    assert len(outputs) == n
    for artifact in outputs[:: n // 6]:
        shown = kitaru_cli("artifacts", "get", artifact["artifact_id"], "--json", env=direct)
        assert shown.returncode == 0, shown


# Away for good costs each SDK's whole retry budget (S3 a few seconds, Azure about 35 s,
# GCS 60 s): only S3 pays it here; the one line is written by Kitaru, the same for each.
@pytest.mark.parametrize(
    ("name", "for_good"), [("s3-moto", True), ("gcs", False), ("azure", False)]
)
def test_a_store_away_for_a_few_retries_is_ridden_out_and_one_away_for_good_fails_in_one_line(
    name: str, for_good: bool, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The store refuses every connection until the SDK has retried three times, then
    comes back: the flow goes on. Then it stays away (`for_good`): the call fails with
    one line. Either way each body ran once and what the journal recorded reads back."""
    backend = make(name, tmp_path_factory)
    script = write_script(tmp_path / "stored.py", FLOW)
    side = tmp_path / "side.txt"
    n = 40 if for_good else 8

    def ran() -> int:
        return len(side.read_text().split()) if side.exists() else 0

    with ChaosProxy(_upstream_port(backend)) as proxy:
        env = {**_through(backend, proxy.port), "SIDE": str(side),
               "KITARU_ARTIFACT_STORE": backend.uri, "PYTHONPATH": str(REPO)}  # fmt: skip
        proc = subprocess.Popen(
            [sys.executable, str(script), str(n)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        while ran() < 1 and proc.poll() is None:
            time.sleep(0.01)
        proxy.down()
        while proxy.refused < 3 and proc.poll() is None:  # three attempts turned away
            time.sleep(0.01)
        proxy.up()
        back = ran()
        if for_good:
            while ran() < back + 3 and proc.poll() is None:  # the flow went on
                time.sleep(0.01)
            proxy.down()
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err  # flow.run() returns the failed execution's handle
    assert proxy.refused >= 3, "the outage ended before the SDK retried: nothing was proved"
    assert set(Counter(side.read_text().split()).values()) == {1}  # each body ran once
    exec_id = json.loads(out)["exec_id"]
    direct = {**backend.subprocess_env(), "KITARU_ARTIFACT_STORE": backend.uri}
    shown = kitaru_cli("executions", "get", exec_id, "--json", env=direct).json()
    completed = [c for c in shown["checkpoints"] if c["status"] == "completed"]
    if for_good:
        assert json.loads(out)["status"] == "failed"
        [line] = err.strip().splitlines()
        assert f"could not be written to {backend.uri}" in line, line
        assert "nothing was recorded" in line, line
        assert back + 2 <= len(completed) < n
    else:
        assert json.loads(out)["status"] == "completed", err
        assert len(completed) == n
    # What the journal recorded is there to read: before, across and after the outage.
    listed = kitaru_cli("artifacts", "list", exec_id, "--json", env=direct).json()
    outputs = [a for a in listed if a["producer"] == "checkpoint"]
    assert len(outputs) == len(completed)
    picked = {0, back - 1, min(back, len(outputs) - 1), len(outputs) - 1}
    for artifact in (outputs[k]["artifact_id"] for k in sorted(picked)):
        got = kitaru_cli("artifacts", "get", artifact, "--json", env=direct)
        assert got.returncode == 0, got
