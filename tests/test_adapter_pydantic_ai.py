"""The PydanticAI adapter, offline with FunctionModel/TestModel and a stdio MCP server:
per-call checkpoints, turn mode, crash mid-run and resume, unsupported versions."""

from __future__ import annotations

import asyncio
import json
import time
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
        n = len(done) + 1
        return ModelResponse(
            parts=[ToolCallPart("lookup", {"n": n}, tool_call_id=f"call-{n}")],
            model_name="scripted",
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
        ("support.tool.lookup:call-1", "tool"),
        ("support.model#2", "model"),
        ("support.tool.lookup:call-2", "tool"),
        ("support.model#3", "model"),
        ("support.tool.lookup:call-3", "tool"),
        ("support.model#4", "model"),
    ]
    assert checkpoints[0]["metadata"]["model"].startswith("function:three_lookups")
    assert checkpoints[0]["metadata"]["input_tokens"] > 0
    assert checkpoints[1]["metadata"] == {
        "tool": "lookup",
        "args": {"n": 1},
        "tool_call_id": "call-1",
    }
    assert kitaru.load(handle.exec_id, "support.tool.lookup:call-2") == "order-2"

    # Replay from the last tool call: the model requests and tools before it are not run.
    model_calls.clear()
    tool_calls.clear()
    replay = KitaruClient().executions.replay(handle.exec_id, from_="support.tool.lookup:call-3")
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
    # TestModel names its tool calls after the tool, the same in every run.
    assert keys == ["quick.model", "quick.tool.ping:pyd_ai_tool_call_id__ping", "quick.model#2"]
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
            return ModelResponse(
                parts=[ToolCallPart("picky", {"value": asked}, tool_call_id=f"try-{asked}")]
            )
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
        "picky.tool.picky:try-0",
        "picky.model#2",
        "picky.tool.picky:try-1",
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
        return ModelResponse(parts=[ToolCallPart(name, args, tool_call_id=f"step-{len(done) + 1}")])
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
    assert origins["ops.mcp.add:step-2"] == ("mcp", "journal")
    assert origins["ops.tool.lookup:step-3"] == ("tool", "journal")
    assert origins["ops.tool.lookup:step-4"] == ("tool", "ran")
    assert origins["ops.model#5"] == ("model", "ran")
    assert json.dumps(view).count('"origin": "ran"') == 2


# -- parallel tool calls ------------------------------------------------------------------

TOPICS = ["otters", "kelp", "urchins", "orcas"]


def four_at_once(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """One turn asking for four tools at once, then an answer naming what each returned."""
    returns = [
        p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)
    ]
    if not returns:
        return ModelResponse(
            parts=[
                ToolCallPart("slow_fetch", {"topic": t}, tool_call_id=f"call-{t}") for t in TOPICS
            ]
        )
    return ModelResponse(
        parts=[TextPart("; ".join(f"{p.tool_call_id}={p.content}" for p in returns))]
    )


fetcher = Agent(FunctionModel(four_at_once), name="fetcher")


@fetcher.tool_plain
def slow_fetch(topic: str) -> str:
    time.sleep(0.5)
    return f"facts about {topic}"


durable_fetcher = adapter.durable(fetcher)


@flow
def fetch_four() -> str:
    return durable_fetcher.run_sync("tell me about the sea").output


def test_the_tool_calls_of_one_turn_run_concurrently_each_keyed_by_its_tool_call_id() -> None:
    started = time.perf_counter()
    handle = fetch_four.run()
    elapsed = time.perf_counter() - started
    assert handle.result() == "; ".join(f"call-{t}=facts about {t}" for t in TOPICS)
    assert elapsed < 1.9, f"four 0.5 s tools took {elapsed:.2f} s: they did not run side by side"

    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    assert keys[0] == "fetcher.model" and keys[-1] == "fetcher.model#2"
    assert sorted(keys[1:-1]) == sorted(f"fetcher.tool.slow_fetch:call-{t}" for t in TOPICS)
    for t in TOPICS:
        assert (
            kitaru.load(handle.exec_id, f"fetcher.tool.slow_fetch:call-{t}") == f"facts about {t}"
        )


def test_a_capability_alone_runs_tool_calls_concurrently_and_resumes_the_same_way() -> None:
    fetched: list[str] = []
    agent_with_capability = Agent(
        FunctionModel(four_at_once),
        name="fetcher",
        capabilities=[adapter.KitaruCapability("fetcher")],
    )

    @agent_with_capability.tool_plain(name="slow_fetch")
    async def fetch(topic: str) -> str:
        fetched.append(topic)
        await asyncio.sleep(0.5)
        return f"facts about {topic}"

    @flow
    async def fetch_four_async() -> str:
        return after_turn((await agent_with_capability.run("tell me about the sea")).output)

    fail_after_turn.append(True)
    started = time.perf_counter()
    handle = fetch_four_async.run()
    elapsed = time.perf_counter() - started
    assert handle.status == "failed" and sorted(fetched) == sorted(TOPICS)
    assert elapsed < 1.9, f"four 0.5 s tools took {elapsed:.2f} s"
    keys = [c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints]
    # Without durable(agent), the run started in tasks of PydanticAI's own before the
    # capability could step in: its calls are keyed in that task's branch, the same on
    # every run of this PydanticAI version. The tool calls still take no branches.
    branch = keys[0].partition("/")[0]
    assert keys[0] == f"{branch}/fetcher.model" and keys[-2] == f"{branch}/fetcher.model#2"
    assert sorted(keys[1:-2]) == sorted(
        f"{branch}/fetcher.tool.slow_fetch:call-{t}" for t in TOPICS
    )

    fetched.clear()
    KitaruClient().executions.resume(handle.exec_id)
    assert handle.result() == "; ".join(f"CALL-{t.upper()}=FACTS ABOUT {t.upper()}" for t in TOPICS)
    assert fetched == []  # every call was read back from the journal


def same_ids_every_run(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Like a test model, numbers its tool calls the same way in every run."""
    returns = [
        p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)
    ]
    question = str(messages[0].parts[-1].content)  # type: ignore[union-attr]
    if not returns:
        return ModelResponse(
            parts=[ToolCallPart("lookup", {"n": len(question)}, tool_call_id="t1")]
        )
    return ModelResponse(parts=[TextPart(f"{question}: {returns[0].content}")])


def test_agent_runs_in_map_items_are_keyed_per_item() -> None:
    mapper = Agent(FunctionModel(same_ids_every_run), name="support")

    @mapper.tool_plain
    def lookup(n: int) -> str:
        time.sleep(0.05 * n)  # the items finish in another order than they started
        return f"order-{n}"

    durable_mapper = adapter.durable(mapper)

    @flow
    def answer_all(questions: list[str]) -> list[str]:
        return kitaru.map(lambda q: durable_mapper.run_sync(q).output, questions)

    handle = answer_all.run(["where?", "when?"])
    assert handle.result() == ["where?: order-6", "when?: order-5"]
    keys = sorted(c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints)
    # Both items' models named their tool call t1: the branch keeps the two apart.
    assert keys == [
        "1/support.model",
        "1/support.model#2",
        "1/support.tool.lookup:t1",
        "2/support.model",
        "2/support.model#2",
        "2/support.tool.lookup:t1",
    ]
    assert kitaru.load(handle.exec_id, "2/support.tool.lookup:t1") == "order-5"


def test_a_tool_call_whose_arguments_changed_fails_the_resume_instead_of_reusing_its_output() -> (
    None
):
    def build(unit: str) -> adapter.DurableAgent:
        priced = Agent(FunctionModel(three_lookups), name="support")

        @priced.tool_plain
        def lookup(n: int, currency: str = unit) -> str:
            return f"order-{n} in {currency}"

        return adapter.durable(priced)

    current = [build("EUR")]

    @flow
    def priced_answer() -> str:
        return after_turn(current[0].run_sync("orders?").output)

    fail_after_turn.append(True)
    handle = priced_answer.run()
    assert handle.status == "failed"
    current[0] = build("USD")  # the code changed before the resume
    KitaruClient().executions.resume(handle.exec_id)
    assert handle.status == "failed"
    error = KitaruClient().executions.get(handle.exec_id).error or ""
    assert "support.tool.lookup:call-1" in error and "keyword 'currency' differs" in error


PARALLEL_SCRIPT = """
import os, sys, time
import kitaru
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel
from kitaru.adapters.pydantic_ai import durable

TOPICS = ["otters", "kelp", "urchins", "orcas"]
# kelp dies after 1 s: otters and urchins have completed by then, orcas is still running.
SECONDS = {"otters": 0.0, "kelp": 1.0, "urchins": 0.1, "orcas": 2.0}

def ledger(line):
    with open(os.environ["LEDGER"], "a") as f:
        f.write(line + "\\n")

def model(messages, info):
    ledger("model")
    parts = [p for m in messages for p in getattr(m, "parts", [])]
    if not any(isinstance(p, ToolReturnPart) for p in parts):
        # No tool_call_id given: PydanticAI makes up a random one for each call.
        return ModelResponse(parts=[ToolCallPart("fetch", {"topic": t}) for t in TOPICS])
    topic_of = {p.tool_call_id: p.args_as_dict()["topic"] for p in parts if isinstance(p, ToolCallPart)}
    answers = [f"{topic_of[p.tool_call_id]}={p.content}" for p in parts if isinstance(p, ToolReturnPart)]
    return ModelResponse(parts=[TextPart("; ".join(answers))])

agent = Agent(FunctionModel(model), name="reader")

@agent.tool_plain
def fetch(topic: str) -> str:
    ledger(f"start {topic}")
    time.sleep(SECONDS[topic])
    if os.environ.get("CRASH_IN") == topic:
        os._exit(9)
    ledger(f"done {topic}")
    return f"facts about {topic}"

reader = durable(agent)

@kitaru.flow
def read_all() -> str:
    return reader.run_sync("tell me about the sea").output

if __name__ == "__main__":
    print(read_all.run().exec_id)
"""


def test_a_crash_among_parallel_tool_calls_resumes_only_the_unfinished_ones(tmp_path: Path) -> None:
    script = write_script(tmp_path / "reader.py", PARALLEL_SCRIPT)
    ledger = tmp_path / "ledger.txt"
    crashed = run_python(script, env={"LEDGER": str(ledger), "CRASH_IN": "kelp"})
    assert crashed.returncode == 9, crashed
    first_run = ledger.read_text().split("\n")[:-1]
    started = ["start otters", "start kelp", "start urchins", "start orcas"]
    assert sorted(first_run) == sorted(["model", *started, "done otters", "done urchins"])
    exec_id = KitaruClient().executions.list()[0].exec_id
    done = [c for c in KitaruClient().executions.get(exec_id).checkpoints if c["kind"] == "tool"]
    assert sorted(c["metadata"]["args"]["topic"] for c in done) == ["otters", "urchins"]

    resumed = kitaru_cli("executions", "resume", exec_id, "--json", env={"LEDGER": str(ledger)})
    assert resumed.returncode == 0, resumed
    view = resumed.json()
    # Each tool's output went back to the call that asked for it.
    assert view["result"] == (
        "otters=facts about otters; kelp=facts about kelp; "
        "urchins=facts about urchins; orcas=facts about orcas"
    )
    # Only the interrupted tool calls and the model request after them ran again.
    assert sorted(ledger.read_text().split("\n")[len(first_run) : -1]) == sorted(
        ["start kelp", "done kelp", "start orcas", "done orcas", "model"]
    )
    tools = [c for c in view["checkpoints"] if c["kind"] == "tool"]
    assert len(tools) == 4 and len({c["key"] for c in tools}) == 4
    for c in tools:
        topic = c["metadata"]["args"]["topic"]
        assert c["origin"] == ("journal" if topic in ("otters", "urchins") else "ran")
        assert c["key"].startswith("reader.tool.fetch:pyd_ai_")
        assert kitaru.load(exec_id, c["key"]) == f"facts about {topic}"
