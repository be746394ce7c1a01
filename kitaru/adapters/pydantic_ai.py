"""Checkpoints inside PydanticAI agent runs.

    from pydantic_ai import Agent
    from kitaru.adapters.pydantic_ai import durable

    agent = Agent("openai:gpt-4o-mini", tools=[lookup])
    support = durable(agent)                  # mode="calls" (the default) or "turn"

    @kitaru.flow
    def answer(question: str) -> str:
        return support.run_sync(question).output

`calls` (the default): inside a flow, each model request is a checkpoint call
(`<agent>.model`, `<agent>.model#2`, ...) and so is each tool call, function tools as
`<agent>.tool.<tool>:<tool-call id>` and MCP tools as `<agent>.mcp.<tool>:<tool-call id>`.
The tool calls of one model turn run concurrently, as PydanticAI runs them; each is keyed
by the tool-call id of the stored model response, so a resume finds every completed tool
call's own output whatever order they finished in (see `kitaru.adapters._support`). A
crash in the middle of a turn resumes there: the model requests and the tool calls that
completed are read back from the journal, the others run again. `turn`: the whole run
is one checkpoint call (`<agent>.run`).

Built on PydanticAI extension points of a capability: `wrap_run` (the run's own tasks
take no branches of their own), `wrap_model_request` (the stored response is returned
without calling the model) and `get_wrapper_toolset` (a `WrapperToolset` whose
`call_tool` is a checkpoint call). Outside a flow, or inside a `@checkpoint`, the agent
runs as it would without Kitaru.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from kitaru import _calls
from kitaru._errors import KitaruUsageError
from kitaru._fingerprint import fingerprint
from kitaru.adapters._support import (
    arguments_fingerprint,
    call_name,
    check_version,
    require,
    storable,
    tool_call_id,
)

require("pydantic_ai", distribution="pydantic-ai", extra="pydantic-ai")

from pydantic import TypeAdapter  # noqa: E402
from pydantic_ai import Agent, ModelRetry, RunContext  # noqa: E402
from pydantic_ai.capabilities import AbstractCapability  # noqa: E402
from pydantic_ai.messages import ModelResponse  # noqa: E402
from pydantic_ai.models import ModelRequestContext  # noqa: E402
from pydantic_ai.run import AgentRunResult  # noqa: E402
from pydantic_ai.toolsets import AbstractToolset, ToolsetTool, WrapperToolset  # noqa: E402

__all__ = ["SUPPORTED", "DurableAgent", "KitaruCapability", "durable"]

SUPPORTED = ("2.50", "3")
"""PydanticAI versions this adapter supports: >= SUPPORTED[0], < SUPPORTED[1]."""

Mode = Literal["calls", "turn"]

_RESPONSE = TypeAdapter(ModelResponse)
# A tool that raised ModelRetry is stored as this marker, so that a resumed run asks the
# model to retry the same way instead of calling the tool again.
_RETRY = "__kitaru_model_retry__"


def _check_version() -> None:
    check_version("pydantic-ai-slim", minimum=SUPPORTED[0], below=SUPPORTED[1], extra="pydantic-ai")


@contextmanager
def _harness() -> Iterator[None]:
    """Around a run: PydanticAI's own tasks take no branches; in an execution recorded
    before tool calls were keyed by id, its tool calls run one at a time, as they did."""
    with _calls.harness_run():
        if _calls.in_legacy_execution():
            with Agent.parallel_tool_call_execution_mode("sequential"):
                yield
        else:
            yield


@dataclass(init=False)
class KitaruCapability(AbstractCapability[Any]):
    """Makes each model request and each tool call of a run its own checkpoint call.

    `durable(agent)` adds it to every run; add it yourself with
    `Agent(..., capabilities=[KitaruCapability("support")])` to keep `agent.run()`.
    """

    prefix: str

    def __init__(self, prefix: str = "agent") -> None:
        _check_version()
        self.prefix = call_name(prefix)

    async def wrap_run(self, ctx: RunContext[Any], *, handler: Any) -> AgentRunResult[Any]:
        # Under `durable(agent)` the run is already a harness run. With the capability
        # alone, the tasks PydanticAI started before this hook have taken branches (the
        # model calls are keyed `4/support.model` or so); the ones it starts from here
        # on, one per tool call among them, do not.
        with _harness():
            result: AgentRunResult[Any] = await handler()
        return result

    async def wrap_model_request(
        self,
        ctx: RunContext[Any],
        *,
        request_context: ModelRequestContext,
        handler: Any,
    ) -> ModelResponse:
        model = request_context.model
        spec = _calls.CallSpec(
            name=call_name(self.prefix, "model"), func_ref="pydantic_ai:model_request", kind="model"
        )

        async def body() -> ModelResponse:
            started = time.monotonic()
            response: ModelResponse = await handler(request_context)
            _calls.log(
                provider=getattr(model, "system", None),
                model=model.model_name,
                response_model=response.model_name,
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                latency_s=round(time.monotonic() - started, 6),
            )
            return response

        return await _calls.run_async(
            spec,
            body,
            dump=lambda r: _RESPONSE.dump_python(r, mode="json"),
            load=_RESPONSE.validate_python,
        )

    def get_wrapper_toolset(self, toolset: AbstractToolset[Any]) -> AbstractToolset[Any] | None:
        return KitaruToolset(toolset, prefix=self.prefix)


def _is_mcp(tool: ToolsetTool[Any]) -> bool:
    found = False

    def visit(toolset: AbstractToolset[Any]) -> None:
        nonlocal found
        found = found or type(toolset).__module__.startswith("pydantic_ai.mcp")

    tool.toolset.apply(visit)
    return found


@dataclass
class KitaruToolset(WrapperToolset[Any]):
    """Runs each tool call as a checkpoint call keyed by its tool-call id
    (`<prefix>.tool.<name>:<id>`, `<prefix>.mcp.<name>:<id>`)."""

    prefix: str = "agent"

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        kind = "mcp" if _is_mcp(tool) else "tool"
        spec = _calls.CallSpec(
            name=call_name(self.prefix, kind, name), func_ref=f"pydantic_ai:{kind}_call", kind=kind
        )

        async def body() -> Any:
            _calls.log(tool=name, args=tool_args)
            if ctx.tool_call_id:
                _calls.log(tool_call_id=ctx.tool_call_id)
            try:
                return await self.wrapped.call_tool(name, tool_args, ctx, tool)
            except ModelRetry as retry:
                return {_RETRY: retry.message}

        result = await _calls.run_async(
            spec,
            body,
            explicit_id=tool_call_id(spec.name, ctx.tool_call_id),
            dump=lambda v: storable(v, f"tool {name!r}"),
            fingerprint=arguments_fingerprint(tool_args),
        )
        if isinstance(result, dict) and set(result) == {_RETRY}:
            raise ModelRetry(str(result[_RETRY]))
        return result


class DurableAgent:
    """An `Agent` whose runs inside a flow are checkpointed (see the module docstring)."""

    def __init__(
        self, agent: Agent[Any, Any], *, mode: Mode = "calls", name: str | None = None
    ) -> None:
        _check_version()
        if mode not in ("calls", "turn"):
            raise KitaruUsageError(f"mode must be 'calls' or 'turn', not {mode!r}")
        self.agent = agent
        self.mode: Mode = mode
        self.name = name or agent.name or "agent"
        self._capability = KitaruCapability(self.name)
        output_type = agent.output_type
        self._result = TypeAdapter(
            AgentRunResult[output_type] if isinstance(output_type, type) else AgentRunResult[Any]  # type: ignore[valid-type]
        )

    def _capabilities(self, given: Sequence[Any] | None) -> list[Any]:
        return [*(given or []), self._capability]

    async def run(self, user_prompt: Any = None, **kwargs: Any) -> AgentRunResult[Any]:
        """`Agent.run` with checkpoints; takes the same arguments."""
        if self.mode == "turn":
            return await _calls.run_async(
                self._turn_spec(),
                lambda: self.agent.run(user_prompt, **kwargs),
                dump=lambda r: self._result.dump_python(r, mode="json"),
                load=self._result.validate_python,
                fingerprint=fingerprint((user_prompt,), {}),
            )
        if not _calls.in_checkpointed_flow():
            return await self.agent.run(user_prompt, **kwargs)
        kwargs["capabilities"] = self._capabilities(kwargs.get("capabilities"))
        with _harness():
            return await self.agent.run(user_prompt, **kwargs)

    def run_sync(self, user_prompt: Any = None, **kwargs: Any) -> AgentRunResult[Any]:
        """`Agent.run_sync` with checkpoints; takes the same arguments."""
        if self.mode == "turn":
            return _calls.run_sync(
                self._turn_spec(),
                lambda: self.agent.run_sync(user_prompt, **kwargs),
                dump=lambda r: self._result.dump_python(r, mode="json"),
                load=self._result.validate_python,
                fingerprint=fingerprint((user_prompt,), {}),
            )
        if not _calls.in_checkpointed_flow():
            return self.agent.run_sync(user_prompt, **kwargs)
        kwargs["capabilities"] = self._capabilities(kwargs.get("capabilities"))
        with _harness():
            return self.agent.run_sync(user_prompt, **kwargs)

    def _turn_spec(self) -> _calls.CallSpec:
        return _calls.CallSpec(
            name=call_name(self.name, "run"), func_ref="pydantic_ai:agent_run", kind="agent_run"
        )

    def __repr__(self) -> str:
        return f"<DurableAgent {self.name} mode={self.mode}>"


def durable(
    agent: Agent[Any, Any], *, mode: Mode = "calls", name: str | None = None
) -> DurableAgent:
    """Wrap an existing PydanticAI `Agent` so that its runs inside a flow are checkpointed.

    `mode="calls"` (default) makes each model request, tool call and MCP call a checkpoint
    call; `mode="turn"` makes the whole run one. `name` prefixes the checkpoint keys
    (default: the agent's name, else `agent`).
    """
    return DurableAgent(agent, mode=mode, name=name)
