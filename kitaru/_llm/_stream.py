"""`kitaru.llm(..., stream=True)`: text as the model writes it, still one checkpoint call.

The call is keyed when `llm()` is called (its position does not depend on when the
caller reads), and its request goes out when the caller reads the first piece. Each
piece is handed over as it arrives; when the response ends, the whole text is the call's
output and the call is committed with its usage and cost, as a plain `llm()` call is. A
call the journal has (a resume, a replay) hands back the stored text as one piece and
sends nothing. A stream the caller closes before its end is recorded as a failed call,
so a resume asks again.

Between pieces the caller's code runs outside the call: a checkpoint it calls is a call
of its own, not nested in this one. Rate limits, server errors and dropped connections
are retried (as `complete` does) until the first piece arrives; after that a failure
fails the call, because the caller has the pieces already.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from kitaru import _calls, _runtime
from kitaru._errors import KitaruUsageError
from kitaru._llm import _prices, _providers
from kitaru._llm._errors import ProviderError


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)


def stream(
    spec: _calls.CallSpec, request: dict[str, Any], fingerprint: str | None
) -> Iterator[str]:
    """The pieces of one `llm(stream=True)` call, checkpointed inside a flow."""
    ctx = _runtime.current()
    if ctx is None or _runtime.current_frame.get() is not None:
        # Outside a flow, or inside a checkpoint whose output covers the answer.
        return _pieces(_providers.resolve(request["model"]), request, Usage())
    call = _runtime.CheckpointRun(ctx, spec, None, fingerprint)
    hit, stored = call.reused()
    if hit:
        return iter([stored] if stored else [])
    return _recorded(call, request)


def _recorded(call: _runtime.CheckpointRun, request: dict[str, Any]) -> Iterator[str]:
    call.enter(detached=True)
    assert call.frame is not None
    pieces: list[str] = []
    usage = Usage()
    try:
        target = _providers.resolve(request["model"])
        prompt = {**request, "model": target.requested}
        call.ctx.journal.put_artifact(
            call.ctx.artifact(
                prompt,
                name=f"{call.key}.prompt",
                producer="llm",
                producer_key=call.key,
                what=f"llm {call.key!r} prompt",
                version=call.ctx.next_version(f"{call.key}.prompt"),
            )
        )
        for piece in _pieces(target, request, usage):
            pieces.append(piece)
            yield piece
    except GeneratorExit:
        closed = KitaruUsageError(
            f"the stream of llm call {call.key!r} was closed before the response ended; "
            "read it to its end (a resume asks the model again)"
        )
        call.failed(closed, 1)
        raise
    except Exception as exc:
        call.failed(exc, 1)
        raise
    call.frame.metadata.update(
        provider=target.provider,
        model=target.model_id,
        alias=target.alias,
        base_url=target.base_url,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        latency_s=round(time.monotonic() - usage.started, 6),
        cost_usd=_prices.estimate(target.price, usage.input_tokens, usage.output_tokens),
        cost_is_estimate=True,
        http_attempts=usage.attempts,
        streamed=True,
    )
    call.succeeded("".join(pieces), 1)


def _pieces(target: _providers.Target, request: dict[str, Any], usage: Usage) -> Iterator[str]:
    """Send the request with streaming on; yield text pieces; fill `usage`."""
    import httpx

    url, headers, body = _providers._request(
        target,
        request["prompt"],
        request["system"],
        request["temperature"],
        request["max_tokens"],
    )
    body["stream"] = True
    if target.provider != "anthropic":
        body["stream_options"] = {"include_usage": True}
    retries = _providers._retries()
    client = _providers._client(_providers._timeout())
    while True:
        usage.attempts += 1
        delivered = False
        try:
            with client.stream("POST", url, headers=headers, json=body) as response:
                status = response.status_code
                if (status == 429 or status >= 500) and usage.attempts <= retries:
                    wait = _providers.retry_after(response)
                    delay = (
                        min(_providers.MAX_RETRY_WAIT, wait)
                        if wait is not None
                        else _providers._backoff(usage.attempts)
                    )
                    _providers._say_retry(
                        f"{target.provider} answered HTTP {status}", usage.attempts, retries, delay
                    )
                    time.sleep(delay)
                    continue
                if status >= 400:
                    response.read()
                    message = _providers._error_message(response)
                    raise ProviderError(
                        f"{target.provider} returned HTTP {status} for model "
                        f"{target.model_id!r}: {message}; {_providers._what_to_do(target, status)}",
                        status_code=status,
                        provider=target.provider,
                        provider_message=message,
                    )
                for data in _sse_data(response.iter_lines()):
                    piece = _piece(target, data, usage)
                    if piece:
                        delivered = True
                        yield piece
                return
        except httpx.TransportError as exc:
            if delivered or usage.attempts > retries:
                raise ProviderError(
                    f"the stream from {target.provider} at {url} broke after "
                    f"{usage.attempts} attempt(s): {type(exc).__name__}: {exc}",
                    status_code=None,
                    provider=target.provider,
                    provider_message=str(exc),
                ) from None
            delay = _providers._backoff(usage.attempts)
            _providers._say_retry(
                f"cannot reach {target.provider} at {url} ({type(exc).__name__})",
                usage.attempts,
                retries,
                delay,
            )
            time.sleep(delay)


def _sse_data(lines: Iterator[str]) -> Iterator[Any]:
    for line in lines:
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            yield json.loads(payload)
        except ValueError:
            continue


def _piece(target: _providers.Target, data: Any, usage: Usage) -> str:
    """The text of one streamed chunk (OpenAI-compatible or Anthropic); usage noted."""
    if not isinstance(data, dict):
        return ""
    if target.provider == "anthropic":
        kind = data.get("type")
        if kind == "message_start":
            found = (data.get("message") or {}).get("usage") or {}
            usage.input_tokens = found.get("input_tokens", usage.input_tokens)
        elif kind == "message_delta":
            usage.output_tokens = (data.get("usage") or {}).get("output_tokens")
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            return str(delta.get("text") or "")
        return ""
    if data.get("usage"):
        usage.input_tokens = data["usage"].get("prompt_tokens")
        usage.output_tokens = data["usage"].get("completion_tokens")
    choices = data.get("choices") or []
    if choices and isinstance(choices[0], dict):
        return str((choices[0].get("delta") or {}).get("content") or "")
    return ""
