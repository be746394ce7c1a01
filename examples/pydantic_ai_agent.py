"""A PydanticAI agent whose model requests and tool calls are checkpoints.

    pip install "kitaru[pydantic-ai]"
    python examples/pydantic_ai_agent.py                      # runs offline
    CRASH_AT_ORDER=3 python examples/pydantic_ai_agent.py     # dies in the third tool call
    kitaru executions resume <id>                             # resumes at the third tool call

The model here is a FunctionModel that plays a support agent offline; use a real one with
`Agent("openai:gpt-4o-mini", ...)` and nothing else changes. `durable(agent)` checkpoints
each model request and tool call; `durable(agent, mode="turn")` the whole run.
"""

from __future__ import annotations

import os
import sys

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import kitaru
from kitaru.adapters.pydantic_ai import durable

ORDERS = {1: "shipped", 2: "packing", 3: "delayed"}


def support_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Look up orders 1, 2 and 3 one by one, then summarize."""
    seen = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if len(seen) < len(ORDERS):
        return ModelResponse(parts=[ToolCallPart("order_status", {"order_id": len(seen) + 1})])
    return ModelResponse(parts=[TextPart("; ".join(str(p.content) for p in seen))])


agent = Agent(FunctionModel(support_model), name="support", instructions="Answer order questions.")


@agent.tool_plain
def order_status(order_id: int) -> str:
    """The shipping status of an order."""
    if os.environ.get("CRASH_AT_ORDER") == str(order_id):
        os._exit(3)  # simulate the process dying mid-call
    return f"order {order_id} is {ORDERS[order_id]}"


support = durable(agent)


@kitaru.flow
def answer(question: str) -> str:
    return support.run_sync(question).output


if __name__ == "__main__":
    handle = answer.run(sys.argv[1] if len(sys.argv) > 1 else "Where are my orders?")
    print(f"execution {handle.exec_id}: {handle.status}")
    print(handle.result())
