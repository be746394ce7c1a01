"""OpenTelemetry: spans sent by real processes to an OTLP/HTTP receiver started here.

One execution is one trace: a `kitaru.execution` root, a `kitaru.run` span per run
(a crash and its resume, a wait and its answer), a span per checkpoint call under its
run, `chat <model>` spans with GenAI attributes for kitaru.llm(), waits as events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import kitaru_cli, run_python, write_script
from llm_server import LLMServer
from otlp_receiver import OTLPReceiver, ReceivedSpan
from server_process import ServerProcess

from kitaru._llm import _aliases

AGENT = """
import os, sys, time
from pathlib import Path
import kitaru
from kitaru import flow, checkpoint

@checkpoint
def step(i: int) -> dict:
    if os.environ.get("HANG_AT") == str(i):
        Path(os.environ["READY"]).write_text("ready")
        time.sleep(600)  # killed here
    return {"i": i, "square": i * i}

@flow
def agent(n: int) -> int:
    total = 0
    for i in range(n):
        total += step(i)["square"]
        if os.environ.get("WAIT_AFTER") == str(i):
            if not kitaru.wait("approve", schema=bool, question="go on?"):
                return -1
    return total

if __name__ == "__main__":
    handle = agent.run(int(sys.argv[1]))
    print("EXEC", handle.exec_id, handle.status)
"""


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    r = OTLPReceiver().start()
    yield r
    r.stop()


def traced(receiver: OTLPReceiver, **extra: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "otel-test",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # spans leave soon after they end
        **extra,
    }


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def key(span: ReceivedSpan) -> str:
    return str(span.attr("kitaru.checkpoint.key"))


def one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    [span] = by_name(spans, name)
    return span


def killed_at(tmp_path: Path, receiver: OTLPReceiver, step: int) -> str:
    """The id of an execution of AGENT (5 steps) killed -9 while running `step`."""
    script = write_script(tmp_path / "project" / "agent.py", AGENT)
    ready = tmp_path / "ready"
    env = {**os.environ, **traced(receiver), "HANG_AT": str(step), "READY": str(ready)}
    proc = subprocess.Popen([sys.executable, str(script), "5"], env=env)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        # The steps before are committed; their spans leave within the batch delay.
        receiver.wait_for(lambda spans: len(by_name(spans, "step")) == step)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    [execution_row] = kitaru_cli("executions", "list", "--json").json()
    assert not by_name(receiver.spans, "kitaru.run agent")  # the killed run sent no span
    return str(execution_row["exec_id"])


def test_a_crash_and_its_resume_are_one_trace(tmp_path: Path, receiver: OTLPReceiver) -> None:
    exec_id = killed_at(tmp_path, receiver, 3)
    resuming = time.time_ns()
    resumed = kitaru_cli("executions", "resume", exec_id, "--json", env=traced(receiver))
    assert resumed.returncode == 0, resumed
    assert resumed.json()["status"] == "completed"

    spans = receiver.wait_for(lambda s: len(by_name(s, "kitaru.run agent")) == 2)
    assert {s.trace_id for s in spans} == {spans[0].trace_id}  # one trace
    assert {s.service for s in spans} == {"otel-test"}
    execution = one(spans, "kitaru.execution agent")
    assert execution.parent_id == ""
    assert execution.attr("kitaru.execution.id") == exec_id
    # Both runs are children of the execution, in the same trace. The killed run's span
    # was sent by the resume, which found it never ended: from the run's start to then.
    run1, run2 = sorted(by_name(spans, "kitaru.run agent"), key=lambda s: s.attr("kitaru.run"))
    assert run2.parent_id == execution.span_id and run2.attr("kitaru.run") == 2
    assert run2.attr("kitaru.run.status") == "completed"
    assert run1.parent_id == execution.span_id and run1.attr("kitaru.run") == 1
    assert run1.attr("kitaru.run.outcome") == "crashed"
    assert run1.attr("kitaru.run.status") == "crashed"
    assert run1.status_code == 2  # error
    assert run1.start_ns < execution.end_ns + 1_000_000_000
    assert resuming <= run1.end_ns <= run2.start_ns

    calls = [s for s in spans if s.attr("kitaru.checkpoint.key")]
    first = [s for s in calls if s.parent_id != run2.span_id]
    assert sorted(key(s) for s in first) == ["step", "step#2", "step#3"]
    assert {s.name for s in first} == {"step"}
    # The calls the killed run completed are under its span, sent late.
    assert {s.parent_id for s in first} == {run1.span_id}
    assert all(run1.start_ns <= s.start_ns and s.end_ns <= run1.end_ns for s in first)
    assert {s.attr("kitaru.checkpoint.origin") for s in first} == {"ran"}

    second = {key(s): s for s in calls if s.parent_id == run2.span_id}
    assert sorted(second) == ["step", "step#2", "step#3", "step#4", "step#5"]
    origins = {k: s.attr("kitaru.checkpoint.origin") for k, s in second.items()}
    assert origins == {
        "step": "reused", "step#2": "reused", "step#3": "reused",
        "step#4": "ran", "step#5": "ran",
    }  # fmt: skip
    ran = second["step#5"]
    assert ran.attr("kitaru.checkpoint.attempts") == 1
    assert ran.attr("kitaru.checkpoint.output.size") > 0
    assert ran.attr("kitaru.checkpoint.kind") == "checkpoint"
    assert second["step"].attr("kitaru.checkpoint.output.size") > 0


def test_a_crashed_run_nobody_resumes_is_sent_by_the_server(
    tmp_path: Path, receiver: OTLPReceiver, kitaru_home: Path
) -> None:
    exec_id = killed_at(tmp_path, receiver, 2)
    server = ServerProcess(
        f"sqlite:///{kitaru_home / 'journal.db'}",
        tmp_path / "server",
        args=("--sweep-interval", "0.2"),
        env=traced(receiver),
    )
    try:
        spans = receiver.wait_for(lambda s: len(by_name(s, "kitaru.run agent")) == 1)
        time.sleep(1)  # five more sweeps: the span is sent once
        assert len(by_name(receiver.spans, "kitaru.run agent")) == 1
    finally:
        server.stop()
    execution, run1 = one(spans, "kitaru.execution agent"), one(spans, "kitaru.run agent")
    assert run1.parent_id == execution.span_id and run1.trace_id == execution.trace_id
    assert run1.attr("kitaru.run") == 1 and run1.attr("kitaru.run.outcome") == "crashed"
    assert run1.status_code == 2
    # The calls the killed run completed are under the span the server sent.
    assert {s.parent_id for s in by_name(spans, "step")} == {run1.span_id}

    # Resumed later, the execution's second run does not send the first one's again.
    resumed = kitaru_cli("executions", "resume", exec_id, "--json", env=traced(receiver))
    assert resumed.returncode == 0, resumed
    spans = receiver.wait_for(lambda s: len(by_name(s, "kitaru.run agent")) == 2)
    runs = sorted(by_name(spans, "kitaru.run agent"), key=lambda s: s.attr("kitaru.run"))
    assert [r.attr("kitaru.run") for r in runs] == [1, 2]
    assert runs[1].attr("kitaru.run.status") == "completed"


def test_a_wait_answered_later_continues_the_trace(tmp_path: Path, receiver: OTLPReceiver) -> None:
    script = write_script(tmp_path / "project" / "agent.py", AGENT)
    first = run_python(script, "3", env=traced(receiver, WAIT_AFTER="0"))
    assert first.returncode == 0 and "waiting" in first.stdout, first
    exec_id = first.stdout.split()[1]
    answered = kitaru_cli(
        "executions", "input", exec_id, "approve", "true",
        cwd=script.parent, env=traced(receiver, WAIT_AFTER="0"),
    )  # fmt: skip
    assert answered.returncode == 0, answered

    spans = receiver.wait_for(lambda s: len(by_name(s, "kitaru.run agent")) == 2)
    assert len({s.trace_id for s in spans}) == 1
    execution = one(spans, "kitaru.execution agent")
    runs = sorted(by_name(spans, "kitaru.run agent"), key=lambda s: s.attr("kitaru.run"))
    assert [r.parent_id for r in runs] == [execution.span_id] * 2
    assert [r.attr("kitaru.run.status") for r in runs] == ["waiting", "completed"]
    assert [r.attr("kitaru.run.outcome") for r in runs] == ["waiting", "completed"]
    # The wait is an event on each run: reached and left waiting, then answered.
    assert runs[0].events == [
        ("kitaru.wait", {"kitaru.wait.key": "approve", "kitaru.wait.outcome": "waiting"})
    ]
    assert runs[1].events == [
        ("kitaru.wait", {"kitaru.wait.key": "approve", "kitaru.wait.outcome": "answered"})
    ]
    children = {r.span_id: sorted(key(s) for s in spans if s.parent_id == r.span_id) for r in runs}
    assert children == {runs[0].span_id: ["step"], runs[1].span_id: ["step", "step#2", "step#3"]}


LLM_FLOW = """
import sys
import kitaru

@kitaru.flow
def ask(topic: str) -> str:
    return kitaru.llm(f"outline {topic}", model="fast")

if __name__ == "__main__":
    handle = ask.run("otters")
    print("EXEC", handle.exec_id, handle.status)
"""


def test_llm_calls_are_gen_ai_spans(tmp_path: Path, receiver: OTLPReceiver) -> None:
    server = LLMServer().start()
    try:
        _aliases.register(
            _aliases.ModelAlias(name="fast", model="openai/gpt-4o-mini", base_url=server.base_url)
        )
        server.reply("a short outline")
        script = write_script(tmp_path / "ask.py", LLM_FLOW)
        done = run_python(script, env={**traced(receiver), "OPENAI_API_KEY": "sk-test"})
        assert done.returncode == 0 and "completed" in done.stdout, done
    finally:
        server.stop()

    spans = receiver.wait_for(lambda s: bool(by_name(s, "chat gpt-4o-mini")))
    chat = one(spans, "chat gpt-4o-mini")
    assert chat.parent_id == one(spans, "kitaru.run ask").span_id
    attributes = {k: v for k, v in chat.attributes.items() if k.startswith("gen_ai.")}
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": 2,  # the test server counts words
        "gen_ai.usage.output_tokens": 3,
    }
    assert chat.attr("kitaru.checkpoint.key") == "llm"
    assert chat.attr("kitaru.checkpoint.kind") == "llm"


HARNESS_FLOWS = {
    "pydantic_ai": """
import os, sys
from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from kitaru import checkpoint, flow
from kitaru.adapters import pydantic_ai as adapter

model = OpenAIChatModel(
    "gpt-4o-mini", provider=OpenAIProvider(base_url=os.environ["BASE_URL"], api_key="sk-test")
)
support = adapter.durable(Agent(model, name="support"))

@checkpoint
def finish(answer: str) -> str:
    return answer.upper()

@flow
def ask(question: str) -> str:
    return finish(support.run_sync(question).output)

handle = ask.run("where is order 7")
print("EXEC", handle.exec_id, handle.status)
""",
    "openai_agents": """
import os
from agents import Agent, OpenAIChatCompletionsModel
from openai import AsyncOpenAI
from kitaru import checkpoint, flow
from kitaru.adapters import openai_agents

client = AsyncOpenAI(base_url=os.environ["BASE_URL"], api_key="sk-test")
support = Agent(
    name="support", instructions="Answer.",
    model=OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client),
)

@checkpoint
def finish(answer: str) -> str:
    return answer.upper()

@flow
def ask(question: str) -> str:
    return finish(openai_agents.run_sync(support, question).final_output)

handle = ask.run("where is order 7")
print("EXEC", handle.exec_id, handle.status)
""",
}


@pytest.mark.parametrize("harness", sorted(HARNESS_FLOWS))
def test_adapter_model_requests_are_gen_ai_spans(
    harness: str, tmp_path: Path, receiver: OTLPReceiver
) -> None:
    server = LLMServer().start()
    try:
        server.reply("order 7 is shipped")
        script = write_script(tmp_path / "ask.py", HARNESS_FLOWS[harness])
        env = {**traced(receiver), "BASE_URL": server.base_url}
        done = run_python(script, env=env)
        assert done.returncode == 0 and "completed" in done.stdout, done
        exec_id = done.stdout.split()[1]
        # A replay reads the response back: the reused span says the same.
        replay = kitaru_cli("executions", "replay", exec_id, "--from", "finish", "--json", env=env)
        assert replay.returncode == 0, replay
        assert len(server.requests) == 1
    finally:
        server.stop()

    spans = receiver.wait_for(lambda s: len(by_name(s, "chat gpt-4o-mini")) == 2)
    ran, reused = sorted(
        by_name(spans, "chat gpt-4o-mini"), key=lambda s: s.attr("kitaru.checkpoint.origin")
    )
    for span in (ran, reused):
        assert span.attr("kitaru.checkpoint.key") == "support.model"
        assert span.attr("kitaru.checkpoint.kind") == "model"
        attributes = {k: v for k, v in span.attributes.items() if k.startswith("gen_ai.")}
        assert attributes == {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            # PydanticAI reads the model the server answered under; the Agents SDK does not.
            **({"gen_ai.response.model": "gpt-4o-mini"} if harness == "pydantic_ai" else {}),
            "gen_ai.usage.input_tokens": 4 if harness == "pydantic_ai" else 5,
            "gen_ai.usage.output_tokens": 4,  # the test server counts words
        }
    assert ran.attr("kitaru.checkpoint.origin") == "ran"
    assert reused.attr("kitaru.checkpoint.origin") == "reused"
    runs = {s.attr("kitaru.execution.id"): s for s in by_name(spans, "kitaru.run ask")}
    assert ran.parent_id == runs[exec_id].span_id
    assert reused.parent_id == runs[replay.json()["exec_id"]].span_id


TOOL_FLOW = """
from pydantic_ai import Agent
from pydantic_ai.messages import ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import FunctionModel
from kitaru import flow
from kitaru.adapters import pydantic_ai as adapter

def one_lookup(messages, info):
    done = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if not done:
        return ModelResponse(parts=[ToolCallPart("lookup", {"n": 7}, tool_call_id="call-7")])
    return ModelResponse(parts=[TextPart("found " + done[0].content)])

agent = Agent(FunctionModel(one_lookup), name="support")

@agent.tool_plain
def lookup(n: int) -> str:
    return f"order-{n}"

support = adapter.durable(agent)

@flow
def ask(question: str) -> str:
    return support.run_sync(question).output

handle = ask.run("where is order 7")
print("EXEC", handle.exec_id, handle.status)
"""


def test_adapter_tool_calls_are_gen_ai_tool_spans(tmp_path: Path, receiver: OTLPReceiver) -> None:
    script = write_script(tmp_path / "tool.py", TOOL_FLOW)
    done = run_python(script, env=traced(receiver))
    assert done.returncode == 0 and "completed" in done.stdout, done
    exec_id = done.stdout.split()[1]
    replay = kitaru_cli(
        "executions", "replay", exec_id, "--from", "support.model#2", "--json", env=traced(receiver)
    )
    assert replay.returncode == 0, replay

    spans = receiver.wait_for(lambda s: len(by_name(s, "execute_tool lookup")) == 2)
    ran, reused = sorted(
        by_name(spans, "execute_tool lookup"), key=lambda s: s.attr("kitaru.checkpoint.origin")
    )
    for span in (ran, reused):
        assert span.attr("kitaru.checkpoint.key") == "support.tool.lookup:call-7"
        attributes = {k: v for k, v in span.attributes.items() if k.startswith("gen_ai.")}
        assert attributes == {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.id": "call-7",
            "gen_ai.tool.type": "function",
        }
    assert (ran.attr("kitaru.checkpoint.origin"), reused.attr("kitaru.checkpoint.origin")) == (
        "ran",
        "reused",
    )
    runs = {s.attr("kitaru.execution.id"): s for s in by_name(spans, "kitaru.run ask")}
    assert ran.parent_id == runs[exec_id].span_id
    assert reused.parent_id == runs[replay.json()["exec_id"]].span_id


QUIET = """
import sys
import kitaru

@kitaru.checkpoint
def step() -> int:
    return 1

@kitaru.flow
def quiet() -> int:
    return step()

handle = quiet.run()
print(handle.status, sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="no-endpoint"),
        pytest.param({"OTEL_SDK_DISABLED": "true"}, id="sdk-disabled"),
        pytest.param({"OTEL_TRACES_EXPORTER": "none"}, id="exporter-none"),
    ],
)
def test_without_an_endpoint_or_when_disabled_nothing_is_imported_or_sent(
    tmp_path: Path, receiver: OTLPReceiver, settings: dict[str, str]
) -> None:
    env = {**traced(receiver), **settings} if settings else {}
    env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    done = run_python(write_script(tmp_path / "quiet.py", QUIET), env=env)
    assert done.returncode == 0, done
    assert done.stdout.split("\n")[0] == "completed []"
    time.sleep(0.3)
    assert receiver.requests == 0


@pytest.mark.parametrize("kept", ["traceparent", "traceparent.run"])
def test_a_flow_log_cannot_move_the_execution_into_another_trace(tmp_path: Path, kept: str) -> None:
    script = write_script(
        tmp_path / "log.py",
        f"""
        import kitaru

        @kitaru.flow
        def sneaky() -> None:
            kitaru.log(**{{"{kept}": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}})

        handle = sneaky.run()
        print(handle.status)
        """,
    )
    done = run_python(script)
    assert "failed" in done.stdout and f"metadata '{kept}' is kept" in done.stderr, done


OWN_PROVIDER = """
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import kitaru

provider = TracerProvider(resource=Resource({"service.name": "my-app"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)

@kitaru.checkpoint
def step() -> int:
    with trace.get_tracer("mine").start_as_current_span("inside the step"):
        return 1

@kitaru.flow
def handled() -> int:
    return step()

with trace.get_tracer("mine").start_as_current_span("request"):
    print(handled.run().status)
"""


def test_a_program_with_its_own_provider_gets_kitaru_spans_under_its_own(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    done = run_python(write_script(tmp_path / "app.py", OWN_PROVIDER), env=traced(receiver))
    assert done.returncode == 0 and "completed" in done.stdout, done
    spans = receiver.wait_for(lambda s: bool(by_name(s, "request")))
    assert {s.service for s in spans} == {"my-app"}  # through the program's provider
    request = one(spans, "request")
    assert one(spans, "kitaru.execution handled").parent_id == request.span_id
    # The checkpoint's span is current in its body: the program's own span nests there.
    assert one(spans, "inside the step").parent_id == one(spans, "step").span_id


def test_an_endpoint_without_the_sdk_runs_untraced_and_says_how_to_install_it(
    tmp_path: Path, receiver: OTLPReceiver
) -> None:
    from benchmarks.otel import BLOCKER  # opentelemetry made unimportable, as if absent

    write_script(tmp_path / "site" / "sitecustomize.py", BLOCKER)
    env = {**traced(receiver), "PYTHONPATH": str(tmp_path / "site")}
    done = run_python(write_script(tmp_path / "quiet.py", QUIET), env=env)
    assert done.returncode == 0, done
    assert done.stdout.split("\n")[0] == "completed []"
    assert 'pip install "kitaru[otel]"' in done.stderr
    time.sleep(0.3)
    assert receiver.requests == 0
    # kitaru doctor says the same.
    doctor = kitaru_cli("doctor", "--json", env=env)
    [tracing] = [c for c in doctor.json()["checks"] if c["name"] == "tracing"]
    assert tracing["status"] == "warning" and tracing["fix"] == 'pip install "kitaru[otel]"'
