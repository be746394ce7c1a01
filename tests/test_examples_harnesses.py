"""Runs the kitaru.llm() and agent-harness examples as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Proc, kitaru_cli, run_python
from llm_server import LLMServer

from kitaru import KitaruClient

EXAMPLES = REPO / "examples"


@pytest.fixture
def server() -> Iterator[LLMServer]:
    s = LLMServer().start()
    yield s
    s.stop()


def _exec_id(proc: Proc) -> str:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("execution "))
    return line.split()[1].rstrip(":")


def test_llm_local_server_example(server: LLMServer) -> None:
    registered = kitaru_cli(
        "model",
        "register",
        "local",
        "openai/llama3.2",
        "--base-url",
        server.base_url,
        "--input-price",
        "0",
        "--output-price",
        "0",
    )
    assert registered.returncode == 0, registered
    server.reply(
        "1. fur 2. tools 3. kelp", "Otters keep warm with dense fur.", "Dense Fur Keeps Otters Warm"
    )
    proc = run_python(EXAMPLES / "llm_local_server.py", "sea otters")
    assert proc.returncode == 0, proc
    assert "# Dense Fur Keeps Otters Warm\n\nOtters keep warm with dense fur." in proc.stdout
    assert server.requests[0]["body"]["messages"][0] == {
        "role": "system",
        "content": "You are a concise science writer.",
    }

    execution = KitaruClient().executions.get(_exec_id(proc))
    assert [(c["key"], c["kind"]) for c in execution.checkpoints] == [
        ("outline", "llm"),
        ("draft", "llm"),
        ("llm", "llm"),
        ("publish", "checkpoint"),
    ]
    assert execution.checkpoints[0]["metadata"]["cost_usd"] == 0
    names = {a.name for a in KitaruClient().artifacts.list(execution.exec_id)}
    assert {"outline.prompt", "draft.prompt", "llm.prompt"} <= names

    # The docstring's replay: a new outline, the draft and title asked again.
    replay = kitaru_cli(
        "executions",
        "replay",
        execution.exec_id,
        "--from",
        "draft",
        "--override",
        'outline="1. fur 2. tools"',
        "--json",
    )
    assert replay.returncode == 0, replay
    assert server.prompts()[-2].startswith(
        "Write one paragraph from this outline:\n1. fur 2. tools"
    )


def test_pydantic_ai_example_crashes_in_one_of_three_parallel_lookups_and_resumes_it() -> None:
    crashed = run_python(EXAMPLES / "pydantic_ai_agent.py", env={"CRASH_AT_ORDER": "3"})
    assert crashed.returncode == 3, crashed
    exec_id = KitaruClient().executions.list()[0].exec_id
    resumed = kitaru_cli("executions", "resume", exec_id, "--json")
    assert resumed.returncode == 0, resumed
    view = resumed.json()
    assert view["result"] == "order 1 is shipped; order 2 is packing; order 3 is delayed"
    origins = {c["key"]: c["origin"] for c in view["checkpoints"]}
    assert origins == {
        "support.model": "journal",
        "support.tool.order_status:call_1": "journal",
        "support.tool.order_status:call_2": "journal",
        "support.tool.order_status:call_3": "ran",
        "support.model#2": "ran",
    }


@pytest.mark.parametrize("strategy", ["calls", "runner_call"])
def test_openai_agents_example(strategy: str) -> None:
    args = ["--runner-call"] if strategy == "runner_call" else []
    proc = run_python(EXAMPLES / "openai_agents_run.py", *args)
    assert proc.returncode == 0, proc
    assert "Lisbon: sunny, 24C / Oslo: rain, 9C" in proc.stdout
    keys = [c["key"] for c in KitaruClient().executions.get(_exec_id(proc)).checkpoints]
    if strategy == "calls":
        # The two tool calls of one turn ran side by side: their rows are in either order.
        assert keys[0] == "forecaster.model" and keys[3:] == ["forecaster.model#2"]
        assert sorted(keys[1:3]) == [
            "forecaster.tool.weather:call-lisbon",
            "forecaster.tool.weather:call-oslo",
        ]
    else:
        assert keys == ["forecaster.run"]


@pytest.mark.services
def test_crewai_example_kickoff_is_an_artifact_and_is_not_run_again(tmp_path: Path) -> None:
    python = os.environ.get("KITARU_CREWAI_PYTHON")
    assert python, (
        "KITARU_CREWAI_PYTHON is not set: run the tests with `make test`, or start the CrewAI "
        "environment with `bash scripts/services/crewai.sh up` and source .test-services/crewai.env"
    )
    log = tmp_path / "kickoff.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KICKOFF_LOG": str(log),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
    }

    def crewai_python(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )

    crashed = crewai_python(str(EXAMPLES / "crewai_crew.py"), "sea otters", CRASH_AT_PUBLISH="1")
    assert crashed.returncode == 3, crashed.stderr[-3000:]
    assert log.read_text().split() == ["llm"]
    exec_id = KitaruClient().executions.list()[0].exec_id

    artifacts = {a.name: a for a in KitaruClient().artifacts.list(exec_id)}
    crew_output = artifacts["run_crew"]
    assert crew_output.producer == "checkpoint"
    assert crew_output.type == "crewai.crews.crew_output:CrewOutput"
    shown = kitaru_cli("artifacts", "get", crew_output.artifact_id, "--json")
    assert shown.returncode == 0, shown
    assert "Three facts about sea otters." in shown.stdout

    resumed = crewai_python("-m", "kitaru", "executions", "resume", exec_id, "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert '"result": "THREE FACTS ABOUT SEA OTTERS."' in resumed.stdout
    assert log.read_text().split() == ["llm"]  # the crew did not run again


def test_live_progress_example_is_followed_as_it_runs(tmp_path: Path) -> None:
    """The example runs in the background with a slow streamed summary while `watch`
    follows it: events, output and the model's words arrive as they happen."""
    from tests.live import Follower, first_execution

    slow = LLMServer(token_delay=0.2).start()
    try:
        registered = kitaru_cli("model", "register", "local", "openai/llama3.2",
                                "--base-url", slow.base_url)  # fmt: skip
        assert registered.returncode == 0, registered
        slow.reply("otters hold hands while they sleep")
        env = {**os.environ, "EXAMPLE_MODEL": "local", "EXAMPLE_STEP_SECONDS": "0.4"}
        example = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "live_progress.py"), "sea otters"],
            env=env, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        exec_id = first_execution(lambda: [e.exec_id for e in KitaruClient().executions.list()])
        watch = Follower(["executions", "watch", exec_id, "--json"], dict(os.environ))
        assert watch.finish() == 0
        out, _ = example.communicate(timeout=60)
    finally:
        slow.stop()
    assert "otters hold hands while they sleep" in out
    entries = watch.entries()
    events = [(e["name"], e["data"]) for _, e in entries if e["kind"] == "event"]
    assert [d["done"] for n, d in events if n == "progress"] == [1, 2, 3]
    assert [n for n, _ in events].count("found") == 3
    # The streamed words reached the watcher while the model was still writing them.
    said = [(at, e) for at, e in entries if e["kind"] == "output" and e["checkpoint"] is None]
    first_word = next(at for at, e in said if "otters" in e["data"]["text"])
    (finished,) = slow.finished
    assert first_word < finished - 0.4, (first_word, finished)
    summary = next(
        e for _, e in entries if e.get("checkpoint") == "summary" and e["kind"] == "call_ended"
    )
    assert summary["data"]["status"] == "completed"
    assert entries[-1][1] == {"kind": "end", "status": "completed", "error": None}
