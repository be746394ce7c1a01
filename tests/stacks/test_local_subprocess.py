"""The `local` orchestrator in subprocess mode: each execution in its own background
process through `python -m kitaru run-execution`, the same entrypoint containers run.
Crash, resume, a wait answered later and cancel all go back through the orchestrator;
switching the active stack never moves an execution that already started."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kitaru_cli, run_python, write_script

PROJECT_FLOW = """
import os, signal, sys, time
import kitaru
from kitaru import checkpoint, flow, wait

@checkpoint
def fetch(topic: str) -> str:
    print("fetching", topic, "pid", os.getpid())
    return f"facts about {topic}"

@checkpoint
def draft(facts: str) -> str:
    marker = os.environ["CRASH_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-checkpoint
    return facts.upper()

@checkpoint
def slow() -> None:
    time.sleep(float(os.environ.get("SLOW", "0")))

@flow
def agent(topic: str) -> dict:
    text = draft(fetch(topic))
    slow()
    ok = wait("approve", schema=bool, question="publish?")
    return {"text": text, "approved": ok, "pid": os.getpid()}

if __name__ == "__main__":
    handle = agent.run(sys.argv[1])
    print(handle.exec_id)
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    write_script(project / "pyproject.toml", '[project]\nname = "agent"\nversion = "0"\n')
    write_script(project / "agent.py", PROJECT_FLOW)
    return project


def _get(exec_id: str) -> dict[str, Any]:
    view: dict[str, Any] = kitaru_cli("executions", "get", exec_id, "--json").json()
    return view


def _until(exec_id: str, statuses: set[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = _get(exec_id)
        if (
            view["status"] in statuses | {"failed", "completed", "cancelled"}
            or time.monotonic() > deadline
        ):
            return view
        time.sleep(0.3)


def test_crash_resume_wait_and_switching_stacks(tmp_path: Path) -> None:
    project = _project(tmp_path)
    marker = tmp_path / "crashed-once"
    reg = kitaru_cli(
        "stack",
        "register",
        "bg",
        "-o",
        "local",
        "-a",
        (tmp_path / "art").as_uri(),
        "--set",
        "mode=subprocess",
        "--set",
        f"environment.CRASH_MARKER={marker}",
        "--use",
    )
    assert reg.returncode == 0, reg
    started = run_python(project / "agent.py", "kites", cwd=tmp_path)
    assert started.returncode == 0, started
    exec_id = started.stdout.strip().splitlines()[-1]

    # The background process is killed inside `draft`; with its pid gone it is crashed.
    view = _until(exec_id, {"crashed"})
    assert view["status"] == "crashed", view
    assert view["stack"] == "bg" and view["orchestrator"] == "local"
    first_run = view["run_id"]
    assert first_run.startswith("pid:")
    assert [(c["key"], c["status"]) for c in view["checkpoints"]] == [("fetch", "completed")]

    # Switching stacks does not move it: resume goes back to its own stack.
    assert kitaru_cli("stack", "use", "local").returncode == 0
    resumed = kitaru_cli("executions", "resume", exec_id, "--json")
    assert resumed.returncode == 0, resumed
    assert resumed.json()["status"] in ("queued", "running", "waiting")
    view = _until(exec_id, {"waiting"})
    assert view["status"] == "waiting", view
    assert view["run_id"] != first_run and view["stack"] == "bg"
    assert [(c["key"], c["origin"]) for c in view["checkpoints"]] == [
        ("fetch", "journal"),
        ("draft", "ran"),
        ("slow", "ran"),
    ]

    # Its stack cannot be deleted while it waits: answering it needs the stack.
    refused = kitaru_cli("stack", "delete", "bg")
    assert refused.returncode == 2 and exec_id in refused.stderr and "--force" in refused.stderr

    answered = kitaru_cli("executions", "input", exec_id, "approve", "true", "--json")
    assert answered.returncode == 0, answered
    view = _until(exec_id, {"completed"})
    assert view["status"] == "completed", view
    assert view["result"]["text"] == "FACTS ABOUT KITES" and view["result"]["approved"] is True
    assert view["runs"] == 3

    logs = kitaru_cli("executions", "logs", exec_id, "--orchestrator")
    assert logs.returncode == 0
    assert f"kitaru: execution {exec_id} completed" in logs.stdout
    journal_logs = kitaru_cli("executions", "logs", exec_id).stdout
    assert "fetching kites" in journal_logs and "--orchestrator" in journal_logs


def test_cancel_stops_the_background_process(tmp_path: Path) -> None:
    project = _project(tmp_path)
    marker = tmp_path / "m"
    marker.write_text("")  # no crash this time
    kitaru_cli(
        "stack",
        "register",
        "bg",
        "-o",
        "local",
        "-a",
        (tmp_path / "art").as_uri(),
        "--set",
        "mode=subprocess",
        "--set",
        f"environment.CRASH_MARKER={marker}",
        "--set",
        "environment.SLOW=60",
    )
    started = run_python(project / "agent.py", "x", cwd=tmp_path, env={"KITARU_STACK": "bg"})
    exec_id = started.stdout.strip().splitlines()[-1]
    view = _until(exec_id, {"running"})
    deadline = time.monotonic() + 30
    while not any(c["key"] == "draft" for c in view["checkpoints"]) and time.monotonic() < deadline:
        time.sleep(0.3)
        view = _get(exec_id)
    cancelled = kitaru_cli("executions", "cancel", exec_id, "--grace", "1", "--json")
    assert cancelled.returncode == 0, cancelled
    assert cancelled.json()["status"] == "cancelled"
    pid = int(view["run_id"].split(":")[1])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    state = (
        Path(f"/proc/{pid}/stat").read_text().split()[2]
        if Path(f"/proc/{pid}").exists()
        else "gone"
    )
    assert state in ("gone", "Z"), state


def test_flow_stack_argument_and_kitaru_stack_pick_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kitaru import KitaruClient, checkpoint, flow, stacks
    from kitaru.journal import current_journal

    journal = current_journal()
    for name in ("pinned", "from-env"):
        stacks.register(
            journal, name, orchestrator="local", artifact_store=(tmp_path / name).as_uri()
        )

    @checkpoint
    def big(n: int) -> str:
        return "x" * n  # above the inline limit: written to the stack's artifact store

    @flow(stack="pinned")
    def pinned(n: int) -> str:
        return big(n)

    @flow
    def unpinned(n: int) -> str:
        return big(n)

    monkeypatch.setenv("KITARU_STACK", "from-env")
    a = pinned.run(20_000)
    b = unpinned.run(20_000)
    client = KitaruClient()
    views = {h.exec_id: client.executions.get(h.exec_id) for h in (a, b)}
    assert views[a.exec_id].data["stack"] == "pinned"
    assert views[b.exec_id].data["stack"] == "from-env"
    assert list((tmp_path / "pinned").rglob("*")) and list((tmp_path / "from-env").rglob("*"))
    assert a.result() == b.result() == "x" * 20_000
