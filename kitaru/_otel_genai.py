"""Names and attributes of the spans of checkpoint calls (kitaru/_otel.py makes them):
a checkpoint's own name, and for model and tool calls those of the OpenTelemetry GenAI
semantic conventions (`chat <model>`, `execute_tool <tool>`, `gen_ai.*`).

Imported only when tracing is on; nothing here imports opentelemetry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kitaru._checkpoint_call import CheckpointRun

# Calls that are one request to a model: kitaru.llm() and a harness's model request
# (the adapters). Each records in its metadata `provider`, `model` (as requested),
# `response_model` (as the provider answered, where known) and the token counts.
MODEL_KINDS = frozenset({"llm", "model"})
# A harness's tool call (the adapters): its metadata holds `tool`, `args` and, where the
# model named the call, `tool_call_id`. An MCP server's tool is an "extension" in the
# conventions' words; a function the agent defines is a "function".
TOOL_KINDS = {"tool": "function", "mcp": "extension"}
GENAI_KINDS = MODEL_KINDS | TOOL_KINDS.keys()


def genai_attributes(kind: str, metadata: dict[str, Any]) -> dict[str, Any]:
    """A model call's attributes under the GenAI semantic conventions, from the metadata
    it recorded; both names of the provider (`gen_ai.system`, and `gen_ai.provider.name`,
    which newer versions of the conventions use instead); a tool call's name, id and type."""
    if kind in TOOL_KINDS:
        tool_pairs = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": metadata.get("tool"),
            "gen_ai.tool.call.id": metadata.get("tool_call_id"),
            "gen_ai.tool.type": TOOL_KINDS[kind],
        }
        return {k: v for k, v in tool_pairs.items() if v is not None}
    if kind not in MODEL_KINDS:
        return {}
    response_model = metadata.get("response_model")
    if response_model is None and kind == "llm":
        # kitaru.llm() sends the model id the provider answers under (no alias, no prefix).
        response_model = metadata.get("model")
    pairs = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": metadata.get("provider"),
        "gen_ai.provider.name": metadata.get("provider"),
        "gen_ai.request.model": metadata.get("model"),
        "gen_ai.response.model": response_model,
        "gen_ai.usage.input_tokens": metadata.get("input_tokens"),
        "gen_ai.usage.output_tokens": metadata.get("output_tokens"),
        "kitaru.llm.cost_usd": metadata.get("cost_usd"),
    }
    return {k: v for k, v in pairs.items() if v is not None}


def call_name(call: CheckpointRun, metadata: dict[str, Any] | None = None) -> str:
    """The checkpoint's name (its key, `draft#2`, is an attribute: span names stay few);
    `chat <model>` for a model call and `execute_tool <tool>` for a harness's tool call,
    as the GenAI conventions name them."""
    if call.spec.kind in TOOL_KINDS:
        tool = (metadata or {}).get("tool")
        return f"execute_tool {tool}" if tool else "execute_tool"
    if call.spec.kind not in MODEL_KINDS:
        return call.name
    model = (metadata or {}).get("model")
    return f"chat {model}" if model else "chat"


def call_attributes(call: CheckpointRun, origin: str) -> dict[str, Any]:
    return {
        "kitaru.checkpoint.key": call.key,
        "kitaru.checkpoint.name": call.name,
        "kitaru.checkpoint.kind": call.spec.kind,
        "kitaru.checkpoint.origin": origin,
    }
