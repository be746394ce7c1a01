"""The PydanticAI adapter, offline with FunctionModel/TestModel and a stdio MCP server:
per-call checkpoints, turn mode, crash mid-run and resume, unsupported versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import kitaru_cli, run_python, write_script
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import kitaru
from kitaru import KitaruClient, flow
from kitaru.adapters import pydantic_ai as adapter

model_calls: list[int] = []
tool_calls: list[int] = []


def _returns(messages: list[ModelMessage]) -> list[Any]:
    return [
        p.content
        for m in messages
        for p in getattr(m, "parts", [])
        if isinstance(p, ToolReturnPart)
    ]


def three_lookups(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    model_calls.append(1)
    done = _returns(messages)
    if len(done) < 3:
        return ModelResponse(
            parts=[ToolCallPart("lookup", {"n": len(done) + 1})], model_name="scripted"
        )
    return ModelResponse(
        parts=[TextPart("found " + ", ".join(map(str, done)))], model_name="scripted"
    )


agent = Agent(FunctionModel(three_lookups), name="support")


@agent.tool_plain
def lookup(n: int) -> str:
    tool_calls.append(n)
    return f"order-{n}"


support = adapter.durable(agent)
support_turn = adapter.durable(agent, mode="turn", name="support_turn")


@flow
def answer(question: str) -> str:
    return support.run_sync(question).output


fail_after_turn: list[bool] = []


@kitaru.checkpoint
def after_turn(text: str) -> str:
    if fail_after_turn:
        fail_after_turn.pop()
        raise RuntimeError("the step after the agent failed")
    return text.upper()


@flow
def answer_in_one_turn(question: str) -> str:
    result = support_turn.run_sync(question)
    assert len(result.all_messages()) == 8  # read back with its messages on resume
    return after_turn(result.output)


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    model_calls.clear()
    tool_calls.clear()


def test_each_model_request_and_tool_call_is_a_checkpoint() -> None:
    handle = answer.run("where are my orders?")
    assert handle.result() == "found order-1, order-2, order-3"

    checkpoints = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert [(c["key"], c["kind"]) for c in checkpoints] == [
        ("support.model", "model"),
        ("support.tool.lookup", "tool"),
        ("support.model#2", "model"),
        ("support.tool.lookup#2", "tool"),
        ("support.model#3", "model"),
        ("support.tool.lookup#3", "tool"),
        ("support.model#4", "model"),
    ]
    assert checkpoints[0]["metadata"]["model"].startswith("function:three_lookups")
    assert checkpoints[0]["metadata"]["input_tokens"] > 0
    assert checkpoints[1]["metadata"] == {"tool": "lookup", "args": {"n": 1}}
    assert kitaru.load(handle.exec_id, "support.tool.lookup#2") == "order-2"

    # Replay from the last tool call: the model requests and tools before it are not run.
    model_calls.clear()
    tool_calls.clear()
    replay = KitaruClient().executions.replay(handle.exec_id, from_="support.tool.lookup#3")
    assert replay.status == "completed"
    assert tool_calls == [3] and len(model_calls) == 1


def test_turn_mode_stores_the_whole_run_as_one_checkpoint() -> None:
    fail_after_turn.append(True)
    handle = answer_in_one_turn.run("orders?")
    assert handle.status == "failed" and len(model_calls) == 4
    KitaruClient().executions.resume(handle.exec_id)
    assert handle.result() == "FOUND ORDER-1, ORDER-2, ORDER-3"
    assert len(model_calls) == 4 and tool_calls == [1, 2, 3]  # the turn was read back
    checkpoints = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert [(c["key"], c["kind"]) for c in checkpoints] == [
        ("support_turn.run", "agent_run"),
        ("after_turn", "checkpoint"),
    ]
    stored = kitaru.load(handle.exec_id, "support_turn.run")
    assert stored["output"] == "found order-1, order-2, order-3"

    model_calls.clear()
    replayed = KitaruClient().executions.replay(handle.exec_id, from_="support_turn.run")
    assert replayed.status == "completed" and len(model_calls) == 4


def test_async_runs_with_test_model() -> None:
    from pydantic_ai.models.test import TestModel

    quick = Agent(TestModel(), name="quick")
    calls: list[str] = []

    @quick.tool_plain
    def ping(host: str) -> str:
        calls.append(host)
        return "pong"

    durable_quick = adapter.durable(quick)

    @flow
    async def check() -> str:
        result = await durable_quick.run("ping the host")
        return str(result.output)

    handle = check.run()
    assert handle.result() == '{"ping":"pong"}'
    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    assert keys == ["quick.model", "quick.tool.ping", "quick.model#2"]
    assert len(calls) == 1


def test_outside_a_flow_the_agent_runs_as_usual() -> None:
    assert support.run_sync("x").output == "found order-1, order-2, order-3"
    assert support_turn.run_sync("x").output == "found order-1, order-2, order-3"
    assert KitaruClient().executions.list() == []


def test_a_tool_asking_for_a_retry_is_replayed_the_same_way() -> None:
    attempts: list[str] = []

    def ask(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        asked = sum(1 for m in messages if isinstance(m, ModelResponse))
        if asked < 2:
            return ModelResponse(parts=[ToolCallPart("picky", {"value": asked})])
        return ModelResponse(parts=[TextPart(f"ok {_returns(messages)[-1]}")])

    picky_agent = Agent(FunctionModel(ask), name="picky")

    @picky_agent.tool_plain
    def picky(value: int) -> str:
        attempts.append(str(value))
        if value == 0:
            raise ModelRetry("value must be positive")
        return f"got {value}"

    durable_picky = adapter.durable(picky_agent)

    @flow
    def picky_flow() -> str:
        return durable_picky.run_sync("go").output

    handle = picky_flow.run()
    assert handle.result() == "ok got 1"
    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    assert keys == [
        "picky.model",
        "picky.tool.picky",
        "picky.model#2",
        "picky.tool.picky#2",
        "picky.model#3",
    ]

    attempts.clear()
    replay = KitaruClient().executions.replay(handle.exec_id, from_="picky.model#3")
    assert replay.status == "completed" and attempts == []


def test_unsupported_versions_name_the_supported_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter, "SUPPORTED", ("9.0", "10"))
    with pytest.raises(
        kitaru.KitaruUsageError, match=r"supports pydantic-ai-slim>=9.0,<10"
    ) as caught:
        adapter.durable(agent)
    assert "is installed" in str(caught.value)
    monkeypatch.undo()
    with pytest.raises(kitaru.KitaruUsageError, match="mode must be 'calls' or 'turn'"):
        adapter.DurableAgent(agent, mode="steps")  # type: ignore[arg-type]


MCP_SERVER = """
import pathlib
from mcp.server import MCPServer

server = MCPServer("calc")

@server.tool()
def add(a: int, b: int) -> int:
    \"\"\"Add two numbers.\"\"\"
    # MCP stdio servers get a minimal environment: find the counters file by location.
    with open(pathlib.Path(__file__).with_name("counters.txt"), "a") as f:
        f.write("mcp.add\\n")
    return a + b

if __name__ == "__main__":
    server.run()
"""

AGENT_SCRIPT = """
import os, pathlib, sys
import kitaru
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel
from kitaru.adapters.pydantic_ai import durable

def count(what):
    with open(os.environ["COUNTERS"], "a") as f:
        f.write(what + "\\n")

PLAN = [("lookup", {"n": 1}), ("add", {"a": 2, "b": 3}), ("lookup", {"n": 2}), ("lookup", {"n": 3})]

def model(messages, info):
    count("model")
    done = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if len(done) < len(PLAN):
        name, args = PLAN[len(done)]
        return ModelResponse(parts=[ToolCallPart(name, args)])
    return ModelResponse(parts=[TextPart(" ".join(str(p.content) for p in done))])

mcp = MCPToolset(pathlib.Path(__file__).with_name("calc_server.py"))
agent = Agent(FunctionModel(model), toolsets=[mcp], name="ops")

@agent.tool_plain
def lookup(n: int) -> str:
    count(f"tool.lookup.{n}")
    if os.environ.get("CRASH_AT_LOOKUP") == str(n):
        os._exit(9)  # the process dies in the middle of the third tool call
    return f"item{n}"

ops = durable(agent)

@kitaru.flow
def run_ops(task: str) -> str:
    return ops.run_sync(task).output

if __name__ == "__main__":
    print(run_ops.run(sys.argv[1]).exec_id)
"""


def test_crash_in_the_third_tool_call_resumes_at_the_third_tool_call(tmp_path: Path) -> None:
    write_script(tmp_path / "calc_server.py", MCP_SERVER)
    script = write_script(tmp_path / "ops.py", AGENT_SCRIPT)
    counters = tmp_path / "counters.txt"
    env = {"COUNTERS": str(counters)}

    crashed = run_python(script, "restock", env={**env, "CRASH_AT_LOOKUP": "3"})
    assert crashed.returncode == 9, crashed
    first_run = counters.read_text().split()
    assert first_run == [
        "model",
        "tool.lookup.1",
        "model",
        "mcp.add",
        "model",
        "tool.lookup.2",
        "model",
        "tool.lookup.3",
    ]

    exec_id = KitaruClient().executions.list()[0].exec_id
    resumed = kitaru_cli("executions", "resume", exec_id, "--json", env=env)
    assert resumed.returncode == 0, resumed
    view = resumed.json()
    assert view["result"] == "item1 5 item2 item3"
    # Only the interrupted tool call and the model request after it ran again.
    assert counters.read_text().split()[len(first_run) :] == ["tool.lookup.3", "model"]
    origins = {c["key"]: (c["kind"], c["origin"]) for c in view["checkpoints"]}
    assert origins["ops.mcp.add"] == ("mcp", "journal")
    assert origins["ops.tool.lookup#2"] == ("tool", "journal")
    assert origins["ops.tool.lookup#3"] == ("tool", "ran")
    assert origins["ops.model#5"] == ("model", "ran")
    assert json.dumps(view).count('"origin": "ran"') == 2
