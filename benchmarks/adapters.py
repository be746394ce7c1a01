"""Parallel tool calls through the agent adapters: one model turn that asks for four
tools at once, each of which sleeps 0.5 s, in PydanticAI and in the OpenAI Agents SDK.

    .venv/bin/python -m benchmarks.adapters [--runs 3] [--tools 4] [--seconds 0.5]

- `plain`: the harness alone, outside a flow (what the harness itself does).
- `durable`: inside a flow through the adapter; every model call and tool call is a
  checkpoint call, the tool calls keyed by their tool-call ids and run side by side.
- `durable, one at a time`: the same with the harness told to run tools one at a time
  (PydanticAI's `sequential` mode, the Agents SDK's `max_function_tool_concurrency=1`),
  which is what the adapters did before tool calls were keyed by their ids.

The wall time of a whole run (two model calls, the tools, the commits) is the median of
--runs. Prints a table and writes JSON to benchmarks/results/adapters.json; as a suite
of `python -m benchmarks` (see `_extras.py`) it runs in a process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
MODES = ("plain", "durable", "durable, one at a time")


def _pydantic_ai(tools: int, seconds: float) -> dict[str, Callable[[], object]]:
    from pydantic_ai import Agent
    from pydantic_ai.messages import (
        ModelMessage,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    import kitaru
    from kitaru.adapters.pydantic_ai import durable

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if not any(isinstance(p, ToolReturnPart) for m in messages for p in m.parts):
            return ModelResponse(parts=[ToolCallPart("wait", {"n": n}) for n in range(tools)])
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(model), name="bench")

    @agent.tool_plain
    def wait(n: int) -> int:
        time.sleep(seconds)
        return n

    wrapped = durable(agent)

    @kitaru.flow
    def turn() -> str:
        return str(wrapped.run_sync("go").output)

    def one_at_a_time() -> object:
        with Agent.parallel_tool_call_execution_mode("sequential"):
            return turn.run().result()

    return {
        "plain": lambda: agent.run_sync("go").output,
        "durable": lambda: turn.run().result(),
        "durable, one at a time": one_at_a_time,
    }


def _openai_agents(tools: int, seconds: float) -> dict[str, Callable[[], object]]:
    from agents import Agent, RunConfig, Runner, function_tool
    from agents.items import ModelResponse
    from agents.models.interface import Model
    from agents.run_config import ToolExecutionConfig
    from agents.usage import Usage
    from openai.types.responses import (
        ResponseFunctionToolCall,
        ResponseOutputMessage,
        ResponseOutputText,
    )

    import kitaru
    from kitaru.adapters import openai_agents

    class FourAtOnce(Model):
        async def get_response(
            self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
        ) -> ModelResponse:
            items = input if isinstance(input, list) else []
            output: list[Any]
            if not any(
                isinstance(i, dict) and i.get("type") == "function_call_output" for i in items
            ):
                output = [
                    ResponseFunctionToolCall(
                        id=f"fc_{n}",
                        call_id=f"call_{n}",
                        type="function_call",
                        name="wait",
                        arguments=json.dumps({"n": n}),
                    )
                    for n in range(tools)
                ]
            else:
                text = ResponseOutputText(text="done", type="output_text", annotations=[])
                output = [
                    ResponseOutputMessage(
                        id="m", type="message", role="assistant", status="completed", content=[text]
                    )
                ]
            return ModelResponse(output=output, usage=Usage(requests=1), response_id=None)

        def stream_response(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    @function_tool
    def wait(n: int) -> int:
        """Wait a while."""
        time.sleep(seconds)
        return n

    agent = Agent(name="bench", model=FourAtOnce(), tools=[wait])
    parallel = RunConfig(tracing_disabled=True)
    serial = RunConfig(
        tracing_disabled=True, tool_execution=ToolExecutionConfig(max_function_tool_concurrency=1)
    )

    @kitaru.flow
    def turn(one_at_a_time: bool) -> str:
        config = serial if one_at_a_time else parallel
        return str(openai_agents.run_sync(agent, "go", run_config=config).final_output)

    return {
        "plain": lambda: Runner.run_sync(agent, "go", run_config=parallel).final_output,
        "durable": lambda: turn.run(False).result(),
        "durable, one at a time": lambda: turn.run(True).result(),
    }


def run(runs: int = 3, tools: int = 4, seconds: float = 0.5) -> dict[str, Any]:
    """Median seconds per run, by harness and mode (call in a process of its own: it
    sets KITARU_HOME when it is not set)."""
    os.environ.setdefault("KITARU_HOME", tempfile.mkdtemp(prefix="kitaru-bench-adapters-"))
    harnesses = {
        "pydantic_ai": _pydantic_ai(tools, seconds),
        "openai_agents": _openai_agents(tools, seconds),
    }
    times: dict[str, dict[str, float]] = {}
    for harness, modes in harnesses.items():
        samples: dict[str, list[float]] = {mode: [] for mode in MODES}
        modes["plain"]()  # warm up: imports, the journal, the event loop
        for _ in range(runs):
            for mode in MODES:  # interleaved, so that a busy machine slows them alike
                t0 = time.perf_counter()
                modes[mode]()
                samples[mode].append(time.perf_counter() - t0)
        times[harness] = {mode: round(statistics.median(s), 3) for mode, s in samples.items()}
    return {"runs": runs, "tools": tools, "tool_seconds": seconds, "seconds": times}


def markdown(data: dict[str, Any]) -> str:
    rows = [
        f"| {harness} | " + " | ".join(f"{t[m]:.2f}" for m in MODES) + " |"
        for harness, t in data["seconds"].items()
    ]
    head = "| harness | " + " | ".join(f"{m} (s)" for m in MODES) + " |"
    return "\n".join([head, "|---" * (len(MODES) + 1) + "|", *rows])


def bench(quick: bool, workdir: Path) -> dict[str, Any]:
    out = workdir / "adapters.json"
    args = ["--runs", "1" if quick else "3", "--out", str(out)]
    env = {**os.environ, "KITARU_HOME": str(workdir / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.adapters", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"benchmarks.adapters failed: {done.stderr[-2000:]}")
    data = json.loads(out.read_text())
    title = (
        f"adapters: one turn of {data['tools']} tools of {data['tool_seconds']} s each, "
        f"median of {data['runs']} runs"
    )
    return {"title": title, "markdown": markdown(data), "data": data}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tools", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=RESULTS / "adapters.json")
    args = parser.parse_args()
    data = run(args.runs, args.tools, args.seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(markdown(data))


if __name__ == "__main__":
    main()
