"""Reaching a model over HTTP: OpenAI-compatible chat completions and Anthropic messages.

| provider | endpoint | base URL (first set wins) | key variable |
|---|---|---|---|
| `openai` | `POST {base}/chat/completions` | alias `--base-url`, `OPENAI_BASE_URL`, OpenAI | `OPENAI_API_KEY` |
| `ollama` | same (Ollama's OpenAI-compatible API) | alias, `OLLAMA_BASE_URL`, `http://localhost:11434/v1` | none |
| `openrouter` | same | alias, OpenRouter | `OPENROUTER_API_KEY` |
| `anthropic` | `POST {base}/v1/messages` | alias, `ANTHROPIC_BASE_URL`, Anthropic | `ANTHROPIC_API_KEY` |

A key is required for a provider's own endpoint and for an alias with `--api-key-env`;
a custom base URL (a local vLLM or Ollama) makes it optional, and it is sent if set.
Rate limits (429), server errors (5xx) and dropped connections are retried with
exponential backoff, waiting what `Retry-After` asks when the provider sends it.
"""

from __future__ import annotations

import email.utils
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kitaru._errors import ConfigurationError
from kitaru._llm import _aliases, _prices
from kitaru._llm._errors import MissingAPIKeyError, ModelNotFoundError, ProviderError

if TYPE_CHECKING:
    import httpx

_DEFAULT_BASE = {
    "openai": ("OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "ollama": ("OLLAMA_BASE_URL", "http://localhost:11434/v1"),
    "openrouter": ("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1"),
    "anthropic": ("ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
}
_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "ollama": None,
    "openrouter": "OPENROUTER_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
}
ANTHROPIC_VERSION = "2023-06-01"
# Anthropic requires max_tokens; this is what a call without one gets.
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024
MAX_RETRY_WAIT = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved model: where to send the request and how to pay for it."""

    requested: str
    alias: str | None
    provider: str
    model_id: str
    base_url: str
    api_key: str | None
    price: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    input_tokens: int | None
    output_tokens: int | None
    attempts: int
    latency_s: float
    response_model: str | None = None  # the model that answered, as the provider names it


def resolve(model: str | None) -> Target:
    """Turn an alias or `provider/model` into a Target, or say what to do instead."""
    aliases = _aliases.load_all()
    if model is None:
        if "default" not in aliases:
            raise ModelNotFoundError(
                "kitaru.llm() was called without model= and no alias named 'default' is "
                "registered; pass model='provider/model' or an alias, or register one with "
                "`kitaru model register default openai/gpt-4o-mini`"
            )
        model = "default"
    alias = aliases.get(model)
    if alias is None and "/" not in model:
        raise ModelNotFoundError(
            f"model {model!r} is not a registered alias; {_aliases.registered_text(aliases)}; "
            "or pass provider/model, such as openai/gpt-4o-mini"
        )
    provider, model_id = _aliases.check_model(alias.model if alias else model)
    env_base, default_base = _DEFAULT_BASE[provider]
    base_url = (alias.base_url if alias else None) or os.environ.get(env_base) or default_base
    key_env = (alias.api_key_env if alias else None) or _KEY_ENV[provider]
    api_key = os.environ.get(key_env) if key_env else None
    key_required = key_env is not None and (
        (alias is not None and alias.api_key_env is not None) or base_url == default_base
    )
    if key_required and not api_key:
        assert key_env is not None
        where = (
            f"alias {alias.name!r} reads" if alias and alias.api_key_env else f"{provider} needs"
        )
        raise MissingAPIKeyError(
            f"{where} an API key from the environment variable {key_env}, which is not set; "
            f"export {key_env}=... before running the flow",
            variable=key_env,
        )
    price = _prices.price_of(provider, model_id)
    if alias is not None and alias.input_price is not None and alias.output_price is not None:
        price = (alias.input_price, alias.output_price)
    return Target(
        requested=model,
        alias=alias.name if alias else None,
        provider=provider,
        model_id=model_id,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        price=price,
    )


def _request(
    target: Target,
    prompt: str,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
) -> tuple[str, dict[str, str], dict[str, Any]]:
    if target.provider == "anthropic":
        base = target.base_url
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        headers = {"anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        if target.api_key:
            headers["x-api-key"] = target.api_key
        body: dict[str, Any] = {
            "model": target.model_id,
            "max_tokens": max_tokens if max_tokens is not None else ANTHROPIC_DEFAULT_MAX_TOKENS,
            "messages": [{"role": "user", "content": prompt}],
        }
        if system is not None:
            body["system"] = system
    else:
        url = target.base_url + "/chat/completions"
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        messages = [{"role": "system", "content": system}] if system is not None else []
        messages.append({"role": "user", "content": prompt})
        body = {"model": target.model_id, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
    if temperature is not None:
        body["temperature"] = temperature
    return url, headers, body


def _parse(target: Target, data: Any) -> tuple[str, int | None, int | None]:
    try:
        if target.provider == "anthropic":
            text = "".join(
                block.get("text", "") for block in data["content"] if block.get("type") == "text"
            )
            usage = data.get("usage") or {}
            return text, usage.get("input_tokens"), usage.get("output_tokens")
        content = data["choices"][0]["message"].get("content")
        usage = data.get("usage") or {}
        return content or "", usage.get("prompt_tokens"), usage.get("completion_tokens")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise ProviderError(
            f"{target.provider} at {target.base_url} answered with a body that is not a "
            f"{'messages' if target.provider == 'anthropic' else 'chat completions'} response: "
            f"{json.dumps(data)[:300]}; check that the base URL points at the API root",
            status_code=200,
            provider=target.provider,
            provider_message="unexpected response body",
        ) from None


def _retries() -> int:
    raw = os.environ.get("KITARU_LLM_RETRIES", "5")
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(f"KITARU_LLM_RETRIES={raw!r} must be a whole number, 0 or more")
    return value


def _timeout() -> float:
    raw = os.environ.get("KITARU_LLM_TIMEOUT", "120")
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(
            f"KITARU_LLM_TIMEOUT={raw!r} must be a number of seconds"
        ) from None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds the provider asked to wait: `Retry-After` as seconds or an HTTP date."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _backoff(attempt: int) -> float:
    # 0.5 s, 1 s, 2 s, ... with jitter so that parallel flows do not retry in lockstep.
    delay: float = min(MAX_RETRY_WAIT, 0.5 * 2.0 ** (attempt - 1))
    return delay * (0.5 + random.random() / 2)


def _say_retry(what: str, attempt: int, retries: int, delay: float) -> None:
    # A retried request is never silent: a server that is down shows up at the first
    # attempt, not after the whole backoff (inside an execution the line is also
    # captured with the call's logs).
    print(
        f"kitaru.llm: {what}; attempt {attempt} of {retries + 1} failed, next in {delay:.1f}s",
        file=sys.stderr,
    )


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return json.dumps(data)[:500]


def _what_to_do(target: Target, status: int) -> str:
    key_env = _KEY_ENV[target.provider]
    if status in (401, 403):
        return f"check the API key{f' in {key_env}' if key_env else ''} and its permissions"
    if status == 404:
        return f"check the model id {target.model_id!r} and the base URL {target.base_url}"
    if status == 429:
        return "the provider kept rate limiting; wait, lower the concurrency, or raise KITARU_LLM_RETRIES"
    if status >= 500:
        return "the provider kept failing; try again later (resume the execution)"
    return "fix the request (prompt, max_tokens, temperature) and resume the execution"


_clients: dict[tuple[int, float], httpx.Client] = {}


def _client(timeout: float) -> httpx.Client:
    """One pooled client per process: building one costs tens of ms (TLS context)."""
    import httpx

    key = (os.getpid(), timeout)
    client = _clients.get(key)
    if client is None:
        client = _clients[key] = httpx.Client(timeout=timeout)
    return client


def complete(
    target: Target,
    prompt: str,
    *,
    system: str | None,
    temperature: float | None,
    max_tokens: int | None,
) -> Completion:
    """Send one completion request, retrying what a retry can fix."""
    import httpx

    url, headers, body = _request(target, prompt, system, temperature, max_tokens)
    retries = _retries()
    started = time.monotonic()
    attempt = 0
    client = _client(_timeout())
    while True:
        attempt += 1
        try:
            response = client.post(url, headers=headers, json=body)
        except httpx.TransportError as exc:
            if attempt > retries:
                raise ProviderError(
                    f"cannot reach {target.provider} at {url} after {attempt} attempt(s): "
                    f"{type(exc).__name__}: {exc}; check the base URL and that the server runs",
                    status_code=None,
                    provider=target.provider,
                    provider_message=str(exc),
                ) from None
            delay = _backoff(attempt)
            _say_retry(
                f"cannot reach {target.provider} at {url} ({type(exc).__name__})",
                attempt,
                retries,
                delay,
            )
            time.sleep(delay)
            continue
        status = response.status_code
        if (status == 429 or status >= 500) and attempt <= retries:
            wait = retry_after(response)
            delay = min(MAX_RETRY_WAIT, wait) if wait is not None else _backoff(attempt)
            _say_retry(f"{target.provider} answered HTTP {status}", attempt, retries, delay)
            time.sleep(delay)
            continue
        if status >= 400:
            message = _error_message(response)
            raise ProviderError(
                f"{target.provider} returned HTTP {status} for model {target.model_id!r}"
                f"{f' after {attempt} attempts' if attempt > 1 else ''}: {message}; "
                f"{_what_to_do(target, status)}",
                status_code=status,
                provider=target.provider,
                provider_message=message,
            )
        try:
            data = response.json()
        except ValueError:
            raise ProviderError(
                f"{target.provider} at {url} answered HTTP {status} with a body that is not "
                f"JSON: {response.text[:200]!r}; check the base URL",
                status_code=status,
                provider=target.provider,
                provider_message="response is not JSON",
            ) from None
        text, input_tokens, output_tokens = _parse(target, data)
        return Completion(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            attempts=attempt,
            latency_s=round(time.monotonic() - started, 6),
            response_model=data.get("model") if isinstance(data.get("model"), str) else None,
        )
