"""A PydanticAI agent whose model requests and tool calls are checkpoints.

    pip install "kitaru[pydantic-ai]"
    python examples/pydantic_ai_agent.py                      # runs offline
    CRASH_AT_ORDER=3 python examples/pydantic_ai_agent.py     # dies in order 3's lookup
    kitaru executions resume <id>                             # runs only order 3's lookup

The model here is a FunctionModel that plays a support agent offline; use a real one with
`Agent("openai:gpt-4o-mini", ...)` and nothing else changes. It asks for three orders in
one turn, and the three lookups (0.5 s each) run side by side, as PydanticAI runs them.
`durable(agent)` checkpoints each model request and each tool call, keyed by the id the
model gave the call (`support.tool.order_status:call_3`): after a crash, the lookups that
completed are read back and only the interrupted one runs again.
`durable(agent, mode="turn")` checkpoints the whole run instead.
"""

from __future__ import annotations

import os
import sys
import time

from pydantic_ai import Agent
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

import kitaru
from kitaru.adapters.pydantic_ai import durable

ORDERS = {1: "shipped", 2: "packing", 3: "delayed"}


def support_model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """Look up orders 1, 2 and 3 in one turn, then summarize."""
    seen = [p for m in messages for p in getattr(m, "parts", []) if isinstance(p, ToolReturnPart)]
    if not seen:
        calls = [
            ToolCallPart("order_status", {"order_id": n}, tool_call_id=f"call_{n}") for n in ORDERS
        ]
        return ModelResponse(parts=calls)
    return ModelResponse(parts=[TextPart("; ".join(str(p.content) for p in seen))])


agent = Agent(FunctionModel(support_model), name="support", instructions="Answer order questions.")


@agent.tool_plain
def order_status(order_id: int) -> str:
    """The shipping status of an order."""
    time.sleep(0.5)  # a slow order system
    if os.environ.get("CRASH_AT_ORDER") == str(order_id):
        time.sleep(1)  # this lookup hangs while the others complete...
        os._exit(3)  # ...then the process dies
    return f"order {order_id} is {ORDERS[order_id]}"


support = durable(agent)


@kitaru.flow
def answer(question: str) -> str:
    return support.run_sync(question).output


if __name__ == "__main__":
    handle = answer.run(sys.argv[1] if len(sys.argv) > 1 else "Where are my orders?")
    print(f"execution {handle.exec_id}: {handle.status}")
    print(handle.result())
