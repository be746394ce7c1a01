"""Checkpoints inside OpenAI Agents SDK runs.

    from agents import Agent, function_tool
    from kitaru.adapters import openai_agents

    @kitaru.flow
    def triage(ticket: str) -> str:
        result = openai_agents.run_sync(agent, ticket)            # strategy="calls"
        return str(result.final_output)

Strategies:

- `calls` (default): inside a flow, each model call is a checkpoint call
  (`<agent>.model`, `<agent>.model#2`, ...) and each function-tool call is one, keyed by
  the call id of the stored model response (`<agent>.tool.<tool>:<call id>`). The
  function tools of one turn run concurrently, as the SDK runs them (bounded by
  `RunConfig.tool_execution`); a crash mid-run resumes at the calls that were
  interrupted, and every completed tool call is read back with its own output. Agents
  reached by handoff are wrapped too. MCP tools are not wrapped: they run again on resume.
- `runner_call`: the whole `Runner.run` is one checkpoint call (`<agent>.run`).

Both return a `DurableRunResult` (final output, last agent, the conversation as input
items); under `calls` its `raw` is the SDK's own `RunResult`. Outside a flow, or inside a
`@checkpoint`, the run is a plain `Runner.run`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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

require("agents", distribution="openai-agents", extra="openai-agents")

from agents import Agent, FunctionTool, Model, RunConfig, Runner  # noqa: E402
from agents.items import ModelResponse  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

__all__ = ["SUPPORTED", "DurableRunResult", "run", "run_sync"]

SUPPORTED = ("0.20", "0.25")
"""OpenAI Agents SDK versions this adapter supports: >= SUPPORTED[0], < SUPPORTED[1]."""

Strategy = Literal["calls", "runner_call"]

_RESPONSE = TypeAdapter(ModelResponse)


def _check_version() -> None:
    check_version("openai-agents", minimum=SUPPORTED[0], below=SUPPORTED[1], extra="openai-agents")


@dataclass
class DurableRunResult:
    """What a checkpointed run returns, the same under both strategies."""

    final_output: Any
    last_agent_name: str
    input_list: list[Any] = field(default_factory=list)
    raw: Any = None
    """The SDK's `RunResult` when the run happened in this process under `calls`."""

    def to_input_list(self) -> list[Any]:
        """The conversation as input items, to continue it in a next run."""
        return list(self.input_list)


def _provider(model: Model) -> str | None:
    """The provider behind one of the SDK's models, as the GenAI conventions name it
    (`gen_ai.system`): its OpenAI models say so by their module; others are unknown."""
    module = type(model).__module__
    if module.startswith("agents.models.openai_"):
        return "openai"
    return None


class KitaruModel(Model):
    """A model whose responses inside a flow are checkpoint calls."""

    def __init__(self, wrapped: Model, prefix: str) -> None:
        self.wrapped = wrapped
        self.prefix = prefix

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        spec = _calls.CallSpec(
            name=call_name(self.prefix, "model"),
            func_ref="openai_agents:get_response",
            kind="model",
        )

        async def body() -> ModelResponse:
            started = time.monotonic()
            response = await self.wrapped.get_response(*args, **kwargs)
            _calls.log(
                provider=_provider(self.wrapped),
                model=getattr(self.wrapped, "model", None) or type(self.wrapped).__name__,
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                latency_s=round(time.monotonic() - started, 6),
            )
            return response

        return await _calls.run_async(
            spec,
            body,
            dump=lambda r: _RESPONSE.dump_python(r, mode="json", by_alias=True),
            load=_RESPONSE.validate_python,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        if _calls.in_checkpointed_flow():
            raise KitaruUsageError(
                "streamed model calls are not checkpointed; inside a flow use "
                "kitaru.adapters.openai_agents.run() (or run_sync) instead of Runner.run_streamed"
            )
        return self.wrapped.stream_response(*args, **kwargs)

    async def close(self) -> None:
        await self.wrapped.close()

    def get_retry_advice(self, request: Any) -> Any:
        return self.wrapped.get_retry_advice(request)


def _wrap_tool(tool: Any, prefix: str, legacy_lock: asyncio.Lock) -> Any:
    if not isinstance(tool, FunctionTool):
        return tool
    original = tool.on_invoke_tool
    spec = _calls.CallSpec(
        name=call_name(prefix, "tool", tool.name), func_ref="openai_agents:tool_call", kind="tool"
    )

    async def invoke(context: Any, arguments: str) -> Any:
        async def body() -> Any:
            try:
                _calls.log(tool=tool.name, args=json.loads(arguments or "{}"))
            except ValueError:
                _calls.log(tool=tool.name, args=arguments)
            if getattr(context, "tool_call_id", None):
                _calls.log(tool_call_id=context.tool_call_id)
            return await original(context, arguments)

        def call() -> Any:
            return _calls.run_async(
                spec,
                body,
                explicit_id=tool_call_id(spec.name, getattr(context, "tool_call_id", None)),
                dump=lambda v: storable(v, f"tool {tool.name!r}"),
                fingerprint=arguments_fingerprint(arguments),
            )

        if _calls.in_legacy_execution():
            # Recorded when tool calls were numbered in the order they ran: one at a time.
            async with legacy_lock:
                return await call()
        return await call()

    return dataclasses.replace(tool, on_invoke_tool=invoke)


def _model_of(agent: Agent[Any], run_config: RunConfig) -> Model:
    if isinstance(agent.model, Model):
        return agent.model
    return run_config.model_provider.get_model(agent.model)


def _settings_of(agent: Agent[Any], run_config: RunConfig) -> Any:
    # A model named by string gets the SDK's defaults for that name; keep them once the
    # name is replaced by a wrapped model object.
    try:
        from agents.run_internal.turn_preparation import get_model_settings
    except ImportError:
        return agent.model_settings
    return get_model_settings(agent, RunConfig(model_provider=run_config.model_provider))


def _durable_graph(start: Agent[Any], run_config: RunConfig) -> Agent[Any]:
    """Copies of the agents reachable from `start`, with wrapped models and tools."""
    copies: dict[int, Agent[Any]] = {}
    legacy_lock = asyncio.Lock()

    def copy(agent: Agent[Any]) -> Agent[Any]:
        if id(agent) in copies:
            return copies[id(agent)]
        prefix = call_name(agent.name)
        clone = agent.clone()
        copies[id(agent)] = clone
        if run_config.model is None:
            clone.model_settings = _settings_of(agent, run_config)
            clone.model = KitaruModel(_model_of(agent, run_config), prefix)
        clone.tools = [_wrap_tool(t, prefix, legacy_lock) for t in agent.tools]
        clone.handoffs = [copy(h) if isinstance(h, Agent) else h for h in agent.handoffs]
        return clone

    return copy(start)


def _run_config(given: Any) -> RunConfig:
    if given is None:
        return RunConfig()
    if isinstance(given, dict):
        return RunConfig(**given)
    if isinstance(given, RunConfig):
        return given
    raise KitaruUsageError(f"run_config must be a RunConfig or a dict, not {type(given).__name__}")


def _prepare(agent: Agent[Any], kwargs: dict[str, Any]) -> Agent[Any]:
    config = _run_config(kwargs.get("run_config"))
    if isinstance(config.model, (str, Model)):
        # One model for every agent: wrap that one, named after the starting agent.
        model = config.model
        resolved = model if isinstance(model, Model) else config.model_provider.get_model(model)
        config = dataclasses.replace(config, model=KitaruModel(resolved, call_name(agent.name)))
    kwargs["run_config"] = config
    return _durable_graph(agent, config)


def _stored(result: Any) -> dict[str, Any]:
    from pydantic_core import to_jsonable_python

    return {
        "final_output": to_jsonable_python(result.final_output),
        "last_agent_name": result.last_agent.name,
        "input_list": to_jsonable_python(result.to_input_list()),
    }


def _check(agent: Any, strategy: str, kwargs: dict[str, Any]) -> None:
    _check_version()
    if not isinstance(agent, Agent):
        raise KitaruUsageError(f"expected an agents.Agent to run, not {type(agent).__name__}")
    if strategy not in ("calls", "runner_call"):
        raise KitaruUsageError(f"strategy must be 'calls' or 'runner_call', not {strategy!r}")
    if "session" in kwargs and kwargs["session"] is not None and strategy == "calls":
        # A session appends to its own store as the run goes; a resumed run would append again.
        raise KitaruUsageError(
            "session= is not supported with strategy='calls' (a resumed run would write the "
            "conversation twice); pass the history as input, or use strategy='runner_call'"
        )


def _find_agent(start: Agent[Any], name: str) -> Agent[Any] | None:
    """The agent called `name` among those reachable from `start` by handoff."""
    seen: set[int] = set()
    todo = [start]
    while todo:
        agent = todo.pop()
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        if agent.name == name:
            return agent
        todo.extend(h for h in agent.handoffs if isinstance(h, Agent))
    return None


class _Loader:
    """Reads a stored run back, typing its output as the agent that produced it."""

    def __init__(self, agent: Agent[Any]) -> None:
        self.agent = agent

    def __call__(self, stored: dict[str, Any]) -> DurableRunResult:
        output = stored["final_output"]
        last = _find_agent(self.agent, stored["last_agent_name"])
        output_type = last.output_type if last is not None else None
        if isinstance(output_type, type) and output_type is not str:
            output = TypeAdapter(output_type).validate_python(output)
        return DurableRunResult(output, stored["last_agent_name"], stored["input_list"])


def _result(result: Any) -> DurableRunResult:
    stored = _stored(result)
    return DurableRunResult(
        result.final_output, stored["last_agent_name"], stored["input_list"], raw=result
    )


async def run(
    agent: Agent[Any], input: Any, *, strategy: Strategy = "calls", **kwargs: Any
) -> DurableRunResult:
    """`Runner.run(agent, input, **kwargs)` with checkpoints (see the module docstring)."""
    _check(agent, strategy, kwargs)
    if strategy == "runner_call":
        spec = _calls.CallSpec(
            name=call_name(agent.name, "run"), func_ref="openai_agents:runner_run", kind="agent_run"
        )

        async def whole() -> DurableRunResult:
            return _result(await Runner.run(agent, input, **kwargs))

        return await _calls.run_async(
            spec,
            whole,
            dump=lambda r: _stored(r.raw),
            load=_Loader(agent),
            fingerprint=fingerprint((input,), {}),
        )
    if not _calls.in_checkpointed_flow():
        return _result(await Runner.run(agent, input, **kwargs))
    durable_agent = _prepare(agent, kwargs)
    with _calls.harness_run():
        return _result(await Runner.run(durable_agent, input, **kwargs))


def run_sync(
    agent: Agent[Any], input: Any, *, strategy: Strategy = "calls", **kwargs: Any
) -> DurableRunResult:
    """`Runner.run_sync(agent, input, **kwargs)` with checkpoints."""
    _check(agent, strategy, kwargs)
    if strategy == "runner_call":
        spec = _calls.CallSpec(
            name=call_name(agent.name, "run"), func_ref="openai_agents:runner_run", kind="agent_run"
        )
        return _calls.run_sync(
            spec,
            lambda: _result(Runner.run_sync(agent, input, **kwargs)),
            dump=lambda r: _stored(r.raw),
            load=_Loader(agent),
            fingerprint=fingerprint((input,), {}),
        )
    if not _calls.in_checkpointed_flow():
        return _result(Runner.run_sync(agent, input, **kwargs))
    durable_agent = _prepare(agent, kwargs)
    with _calls.harness_run():
        return _result(Runner.run_sync(durable_agent, input, **kwargs))
