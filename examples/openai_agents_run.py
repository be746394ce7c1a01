"""An OpenAI Agents SDK run whose model calls and tool calls are checkpoints.

    pip install "kitaru[openai-agents]"
    python examples/openai_agents_run.py                  # runs offline
    python examples/openai_agents_run.py --runner-call    # the whole Runner.run as one checkpoint

The model is a small class implementing the SDK's Model interface so that the example runs
offline; give the agent `model="gpt-4o-mini"` to use OpenAI and nothing else changes. It
asks for two cities' weather in one turn; each tool call is a checkpoint keyed by the call
id in the model's response (`forecaster.tool.weather:call-oslo`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from agents import Agent, RunConfig, function_tool
from agents.items import ModelResponse
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import kitaru
from kitaru.adapters import openai_agents


class WeatherModel(Model):
    """Asks for the weather in two cities in one turn, then reports it."""

    async def get_response(
        self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any
    ) -> ModelResponse:
        items = input if isinstance(input, list) else []
        results = [
            i["output"]
            for i in items
            if isinstance(i, dict) and i.get("type") == "function_call_output"
        ]
        output: list[Any]
        if not results:
            # Two tool calls in one response: the SDK runs them side by side.
            output = [
                ResponseFunctionToolCall(
                    id=f"call-{city.lower()}",
                    call_id=f"call-{city.lower()}",
                    type="function_call",
                    name="weather",
                    arguments=json.dumps({"city": city}),
                )
                for city in ("Lisbon", "Oslo")
            ]
        else:
            text = ResponseOutputText(text=" / ".join(results), type="output_text", annotations=[])
            output = [
                ResponseOutputMessage(
                    id="msg", type="message", role="assistant", status="completed", content=[text]
                )
            ]
        return ModelResponse(
            output=output,
            usage=Usage(requests=1, input_tokens=12, output_tokens=4),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("this example model does not stream")


@function_tool
def weather(city: str) -> str:
    """Today's weather in a city."""
    return {"Lisbon": "Lisbon: sunny, 24C", "Oslo": "Oslo: rain, 9C"}[city]


agent = Agent(
    name="forecaster", instructions="Report the weather.", model=WeatherModel(), tools=[weather]
)
STRATEGY: openai_agents.Strategy = "runner_call" if "--runner-call" in sys.argv else "calls"


@kitaru.flow
def forecast(question: str) -> str:
    result = openai_agents.run_sync(
        agent, question, strategy=STRATEGY, run_config=RunConfig(tracing_disabled=True)
    )
    return str(result.final_output)


if __name__ == "__main__":
    handle = forecast.run("Weather in Lisbon and Oslo?")
    print(f"execution {handle.exec_id}: {handle.status}")
    print(handle.result())
