"""`kitaru.llm()`: one model call, checkpointed like any other step.

Inside a flow each call is a checkpoint call of kind `llm`, keyed `llm`, `llm#2`, ...
(or `name`, `name#2`, ... when `name=` is given). The prompt is stored as the artifact
`<key>.prompt` before the request goes out, the response text is the call's output,
and the call's metadata records provider, model, token counts, latency and the
estimated cost. A resumed or replayed execution reads completed calls back from the
journal and sends nothing. With `stream=True` the call returns an iterator of text
pieces as the model writes them; it is still one checkpoint call whose output is the
whole text (kitaru/_llm/_stream.py). Inside a checkpoint the enclosing call's output covers the
answer; the prompt artifact and the metadata go on that call. Outside a flow `llm()` is
a plain call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, overload

from kitaru import _calls
from kitaru._checkpoint import _check_name
from kitaru._errors import KitaruUsageError
from kitaru._llm._errors import LLMError, MissingAPIKeyError, ModelNotFoundError, ProviderError

__all__ = ["LLMError", "MissingAPIKeyError", "ModelNotFoundError", "ProviderError", "llm"]

_FUNC_REF = "kitaru:llm"


@overload
def llm(
    prompt: str,
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    name: str | None = None,
    stream: Literal[False] = False,
) -> str: ...


@overload
def llm(
    prompt: str,
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    name: str | None = None,
    stream: Literal[True],
) -> Iterator[str]: ...


def llm(
    prompt: str,
    *,
    model: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    name: str | None = None,
    stream: bool = False,
) -> str | Iterator[str]:
    """Ask a model and return its text.

    `model` is a registered alias (`kitaru model register fast openai/gpt-4o-mini`) or
    `provider/model` (`openai/...`, `anthropic/...`, `ollama/...`, `openrouter/...`);
    without it the alias `default` is used. `name` keys the checkpoint call
    (`summarize`, `summarize#2`, ...) instead of `llm`. `stream=True` returns an
    iterator of text pieces as they arrive (read it to its end: the whole text is the
    call's output; a resumed call yields the stored text and sends no request).
    """
    if not isinstance(prompt, str):
        raise KitaruUsageError(
            f"kitaru.llm() needs the prompt as a str, not {type(prompt).__name__}"
        )
    if max_tokens is not None and max_tokens < 1:
        raise KitaruUsageError(f"max_tokens must be 1 or more, not {max_tokens}")
    call_name = _check_name(name, "llm name") if name is not None else "llm"
    spec = _calls.CallSpec(name=call_name, func_ref=_FUNC_REF, kind="llm", hint=str)

    def body() -> str:
        from kitaru._llm import _prices, _providers

        target = _providers.resolve(model)
        key = _calls.current_key()
        if key is not None:
            request: dict[str, Any] = {
                "prompt": prompt,
                "system": system,
                "model": target.requested,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
            _calls.save_artifact(f"{key}.prompt", request, producer="llm")
        done = _providers.complete(
            target, prompt, system=system, temperature=temperature, max_tokens=max_tokens
        )
        _calls.log(
            provider=target.provider,
            model=target.model_id,
            response_model=done.response_model,
            alias=target.alias,
            base_url=target.base_url,
            input_tokens=done.input_tokens,
            output_tokens=done.output_tokens,
            latency_s=done.latency_s,
            cost_usd=_prices.estimate(target.price, done.input_tokens, done.output_tokens),
            cost_is_estimate=True,
            http_attempts=done.attempts,
        )
        return done.text

    from kitaru._fingerprint import fingerprint

    inputs = fingerprint(
        (prompt,),
        {"model": model, "system": system, "temperature": temperature, "max_tokens": max_tokens},
    )
    if stream:
        from kitaru._llm import _stream

        request = {
            "prompt": prompt,
            "system": system,
            "model": model,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        return _stream.stream(spec, request, inputs)
    return _calls.run_sync(spec, body, fingerprint=inputs)
