"""The OpenAI Agents SDK adapter, offline with a model implementing the SDK's Model
interface: `calls` and `runner_call` strategies, handoffs, crash mid-run and resume."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from conftest import kitaru_cli, run_python, write_script
from pydantic import BaseModel

import kitaru
from kitaru import KitaruClient, flow
from kitaru.adapters import openai_agents

OFFLINE = RunConfig(tracing_disabled=True)
model_calls: list[str] = []
tool_calls: list[int] = []


def assistant_message(text: str) -> Any:
    from openai.types.responses import ResponseOutputMessage, ResponseOutputText

    content = [ResponseOutputText(text=text, type="output_text", annotations=[])]
    return ResponseOutputMessage(
        id="msg", type="message", role="assistant", status="completed", content=content
    )


def function_call(name: str, args: dict[str, Any], call_id: str) -> Any:
    from openai.types.responses import ResponseFunctionToolCall

    return ResponseFunctionToolCall(
        id=call_id, call_id=call_id, type="function_call", name=name, arguments=json.dumps(args)
    )


class PlannedModel(Model):
    """Calls `lookup` three times, then answers with what the lookups returned."""

    def __init__(self, name: str, final: str = "text") -> None:
        self.name = name
        self.final = final

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        model_calls.append(self.name)
        items = input if isinstance(input, list) else []
        outputs = [
            i["output"]
            for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        if self.name == "triage":
            output = [function_call("transfer_to_billing", {}, "handoff-1")]
        elif len(outputs) < 4:  # the handoff's own output counts as one
            output = [function_call("lookup", {"n": len(outputs)}, f"call-{len(outputs)}")]
        elif self.final == "json":
            output = [assistant_message(json.dumps({"invoices": 3, "note": ",".join(outputs[1:])}))]
        else:
            output = [assistant_message("billing found " + ",".join(outputs[1:]))]
        usage = Usage(requests=1, input_tokens=10 * len(items) + 1, output_tokens=3, total_tokens=0)
        return ModelResponse(output=output, usage=usage, response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@function_tool
def lookup(n: int) -> str:
    """Look up invoice n."""
    tool_calls.append(n)
    return f"inv{n}"


class Summary(BaseModel):
    invoices: int
    note: str


billing = Agent(name="billing", model=PlannedModel("billing"), tools=[lookup])
triage = Agent(name="triage", model=PlannedModel("triage"), handoffs=[billing])
billing_typed = Agent(
    name="billing", model=PlannedModel("billing", "json"), tools=[lookup], output_type=Summary
)
triage_typed = Agent(name="triage", model=PlannedModel("triage"), handoffs=[billing_typed])


@flow
def support(ticket: str) -> str:
    result = openai_agents.run_sync(triage, ticket, run_config=OFFLINE)
    assert result.raw is not None and result.last_agent_name == "billing"
    return str(result.final_output)


fail_after_run: list[bool] = []


@kitaru.checkpoint
def after_run(note: str) -> str:
    if fail_after_run:
        fail_after_run.pop()
        raise RuntimeError("the step after the run failed")
    return note


@flow
def support_whole_run(ticket: str) -> dict[str, Any]:
    result = openai_agents.run_sync(
        triage_typed, ticket, strategy="runner_call", run_config=OFFLINE
    )
    assert isinstance(result.final_output, Summary)  # typed again when read back
    after_run(result.final_output.note)
    return {
        "output": result.final_output.model_dump(),
        "agent": result.last_agent_name,
        "items": len(result.to_input_list()),
    }


@pytest.fixture(autouse=True)
def _reset() -> None:
    model_calls.clear()
    tool_calls.clear()


def test_calls_strategy_checkpoints_each_model_and_tool_call_across_handoffs() -> None:
    handle = support.run("where is my invoice?")
    assert handle.result() == "billing found inv1,inv2,inv3"
    checkpoints = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert [(c["key"], c["kind"]) for c in checkpoints] == [
        ("triage.model", "model"),
        ("billing.model", "model"),
        ("billing.tool.lookup:call-1", "tool"),
        ("billing.model#2", "model"),
        ("billing.tool.lookup:call-2", "tool"),
        ("billing.model#3", "model"),
        ("billing.tool.lookup:call-3", "tool"),
        ("billing.model#4", "model"),
    ]
    assert checkpoints[2]["metadata"] == {
        "tool": "lookup",
        "args": {"n": 1},
        "tool_call_id": "call-1",
    }
    assert checkpoints[1]["metadata"]["output_tokens"] == 3

    model_calls.clear()
    tool_calls.clear()
    replay = KitaruClient().executions.replay(handle.exec_id, from_="billing.tool.lookup:call-3")
    assert replay.status == "completed", replay.error
    assert tool_calls == [3] and model_calls == ["billing"]


def test_runner_call_strategy_stores_the_whole_run_with_its_typed_output() -> None:
    fail_after_run.append(True)
    handle = support_whole_run.run("invoices?")
    assert handle.status == "failed" and len(model_calls) == 5
    KitaruClient().executions.resume(handle.exec_id)
    assert len(model_calls) == 5 and tool_calls == [1, 2, 3]  # the run was read back
    assert handle.result() == {
        "output": {"invoices": 3, "note": "inv1,inv2,inv3"},
        "agent": "billing",
        "items": 10,
    }
    checkpoints = KitaruClient().executions.get(handle.exec_id).checkpoints
    assert [(c["key"], c["kind"]) for c in checkpoints] == [
        ("triage.run", "agent_run"),
        ("after_run", "checkpoint"),
    ]

    model_calls.clear()
    tool_calls.clear()
    KitaruClient().executions.replay(handle.exec_id, from_="triage.run")
    assert len(model_calls) == 5 and tool_calls == [1, 2, 3]


def test_outside_a_flow_it_is_a_plain_runner_call() -> None:
    result = openai_agents.run_sync(triage, "x", run_config=OFFLINE)
    assert result.final_output == "billing found inv1,inv2,inv3"
    assert KitaruClient().executions.list() == []


def test_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(kitaru.KitaruUsageError, match="strategy must be 'calls' or 'runner_call'"):
        openai_agents.run_sync(triage, "x", strategy="turns")  # type: ignore[arg-type]
    with pytest.raises(kitaru.KitaruUsageError, match=r"expected an agents\.Agent"):
        openai_agents.run_sync("triage", "x")  # type: ignore[arg-type]
    monkeypatch.setattr(openai_agents, "SUPPORTED", ("0.1", "0.2"))
    with pytest.raises(kitaru.KitaruUsageError, match=r"supports openai-agents>=0.1,<0.2"):
        openai_agents.run_sync(triage, "x")


SCRIPT = """
import os, sys
import kitaru
from agents import Agent, RunConfig, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText
from kitaru.adapters import openai_agents

def count(what):
    with open(os.environ["COUNTERS"], "a") as f:
        f.write(what + "\\n")

class Planned(Model):
    async def get_response(self, system_instructions, input, *args, **kwargs):
        count("model")
        outputs = [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
        if len(outputs) < 3:
            n = len(outputs) + 1
            out = [ResponseFunctionToolCall(id=f"c{n}", call_id=f"c{n}", type="function_call", name="fetch", arguments=f'{{"n": {n}}}')]
        else:
            text = ResponseOutputText(text=" ".join(o["output"] for o in outputs), type="output_text", annotations=[])
            out = [ResponseOutputMessage(id="m", type="message", role="assistant", status="completed", content=[text])]
        return ModelResponse(output=out, usage=Usage(requests=1), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError

@function_tool
def fetch(n: int) -> str:
    \"\"\"Fetch page n.\"\"\"
    count(f"tool.fetch.{n}")
    if os.environ.get("CRASH_AT_FETCH") == str(n):
        os._exit(9)
    return f"page{n}"

agent = Agent(name="reader", model=Planned(), tools=[fetch])

@kitaru.flow
def read(topic: str) -> str:
    return openai_agents.run_sync(agent, topic, run_config=RunConfig(tracing_disabled=True)).final_output

if __name__ == "__main__":
    print(read.run(sys.argv[1]).exec_id)
"""


def test_crash_mid_run_resumes_at_the_interrupted_tool_call(tmp_path: Path) -> None:
    script = write_script(tmp_path / "reader.py", SCRIPT)
    counters = tmp_path / "counters.txt"
    env = {"COUNTERS": str(counters)}
    crashed = run_python(script, "otters", env={**env, "CRASH_AT_FETCH": "3"})
    assert crashed.returncode == 9, crashed
    first_run = counters.read_text().split()
    assert first_run == ["model", "tool.fetch.1", "model", "tool.fetch.2", "model", "tool.fetch.3"]

    exec_id = KitaruClient().executions.list()[0].exec_id
    resumed = kitaru_cli("executions", "resume", exec_id, "--json", env=env)
    assert resumed.returncode == 0, resumed
    assert resumed.json()["result"] == "page1 page2 page3"
    assert counters.read_text().split()[len(first_run) :] == ["tool.fetch.3", "model"]
    ran = [c["key"] for c in resumed.json()["checkpoints"] if c["origin"] == "ran"]
    assert ran == ["reader.tool.fetch:c3", "reader.model#4"]


# -- parallel tool calls ------------------------------------------------------------------

TOPICS = ["otters", "kelp", "urchins", "orcas"]


class FourAtOnce(Model):
    """One turn asking for four tools at once, then an answer naming what each returned."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        items = input if isinstance(input, list) else []
        outputs = [
            i for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        if not outputs:
            output = [function_call("slow_fetch", {"topic": t}, f"call-{t}") for t in TOPICS]
        else:
            output = [
                assistant_message("; ".join(f"{o['call_id']}={o['output']}" for o in outputs))
            ]
        return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


@function_tool
def slow_fetch(topic: str) -> str:
    """Fetch facts about a topic, slowly."""
    time.sleep(0.5)
    return f"facts about {topic}"


fetcher = Agent(name="fetcher", model=FourAtOnce(), tools=[slow_fetch])


def test_the_tool_calls_of_one_turn_run_concurrently_each_keyed_by_its_call_id() -> None:
    @flow
    def fetch_four() -> str:
        return str(openai_agents.run_sync(fetcher, "the sea", run_config=OFFLINE).final_output)

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


def test_async_runs_in_map_items_are_keyed_per_item() -> None:
    @flow
    async def fetch_twice() -> list[str]:
        async def one(question: str) -> str:
            result = await openai_agents.run(fetcher, question, run_config=OFFLINE)
            return str(result.final_output)

        return await kitaru.map(one, ["sea", "shore"])  # type: ignore[no-any-return]

    handle = fetch_twice.run()
    assert handle.result() == ["; ".join(f"call-{t}=facts about {t}" for t in TOPICS)] * 2
    keys = sorted(c["key"] for c in KitaruClient().executions.get(handle.exec_id).checkpoints)
    # The model gives the same call ids in both items: the branch keeps them apart.
    assert keys == sorted(
        [f"{item}/fetcher.model" for item in (1, 2)]
        + [f"{item}/fetcher.model#2" for item in (1, 2)]
        + [f"{item}/fetcher.tool.slow_fetch:call-{t}" for t in TOPICS for item in (1, 2)]
    )


PARALLEL_SCRIPT = """
import os, sys, time, uuid
import kitaru
from agents import Agent, RunConfig, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText
from kitaru.adapters import openai_agents

TOPICS = ["otters", "kelp", "urchins", "orcas"]
# kelp dies after 1 s: otters and urchins have completed by then, orcas is still running.
SECONDS = {"otters": 0.0, "kelp": 1.0, "urchins": 0.1, "orcas": 2.0}

def ledger(line):
    with open(os.environ["LEDGER"], "a") as f:
        f.write(line + "\\n")

class Planned(Model):
    async def get_response(self, system_instructions, input, *args, **kwargs):
        ledger("model")
        items = [i for i in input if isinstance(i, dict)] if isinstance(input, list) else []
        outputs = [i for i in items if i.get("type") == "function_call_output"]
        if not outputs:
            # Call ids as a provider makes them: new ones on every request.
            out = [ResponseFunctionToolCall(id=f"fc_{t}", call_id=f"call_{uuid.uuid4().hex[:12]}", type="function_call", name="fetch", arguments=f'{{"topic": "{t}"}}') for t in TOPICS]
        else:
            topic_of = {i["call_id"]: i["arguments"] for i in items if i.get("type") == "function_call"}
            text = "; ".join(f"{topic_of[o['call_id']]}={o['output']}" for o in outputs)
            out = [ResponseOutputMessage(id="m", type="message", role="assistant", status="completed", content=[ResponseOutputText(text=text, type="output_text", annotations=[])])]
        return ModelResponse(output=out, usage=Usage(requests=1), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError

@function_tool
def fetch(topic: str) -> str:
    \"\"\"Fetch facts about a topic.\"\"\"
    ledger(f"start {topic}")
    time.sleep(SECONDS[topic])
    if os.environ.get("CRASH_IN") == topic:
        os._exit(9)
    ledger(f"done {topic}")
    return f"facts about {topic}"

agent = Agent(name="reader", model=Planned(), tools=[fetch])

@kitaru.flow
def read_all() -> str:
    return openai_agents.run_sync(agent, "the sea", run_config=RunConfig(tracing_disabled=True)).final_output

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
    assert view["result"] == "; ".join(
        f'{{"topic": "{t}"}}=facts about {t}' for t in ["otters", "kelp", "urchins", "orcas"]
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
        assert c["key"].startswith("reader.tool.fetch:call_")
        assert kitaru.load(exec_id, c["key"]) == f"facts about {topic}"
