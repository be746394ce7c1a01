"""Estimated cost of a model call from its token counts.

The table holds list prices in USD per 1M tokens (input, output) as published by the
providers when it was last updated; it is an estimate, not a bill: it ignores cached
input discounts, batch pricing, reasoning tokens billed apart and price changes.
Model ids match by longest prefix, so dated snapshots (`claude-3-5-haiku-20241022`)
find their family. A model not in the table has no cost (None); give an alias its
own prices with `kitaru model register ... --input-price X --output-price Y`.
"""

from __future__ import annotations

# (provider, model id prefix) -> (USD per 1M input tokens, USD per 1M output tokens)
PRICES: dict[tuple[str, str], tuple[float, float]] = {
    ("openai", "gpt-4o-mini"): (0.15, 0.60),
    ("openai", "gpt-4o"): (2.50, 10.00),
    ("openai", "gpt-4.1-nano"): (0.10, 0.40),
    ("openai", "gpt-4.1-mini"): (0.40, 1.60),
    ("openai", "gpt-4.1"): (2.00, 8.00),
    ("openai", "gpt-5-nano"): (0.05, 0.40),
    ("openai", "gpt-5-mini"): (0.25, 2.00),
    ("openai", "gpt-5"): (1.25, 10.00),
    ("openai", "o4-mini"): (1.10, 4.40),
    ("openai", "o3-mini"): (1.10, 4.40),
    ("openai", "o3"): (2.00, 8.00),
    ("anthropic", "claude-3-haiku"): (0.25, 1.25),
    ("anthropic", "claude-3-5-haiku"): (0.80, 4.00),
    ("anthropic", "claude-haiku-4-5"): (1.00, 5.00),
    ("anthropic", "claude-3-5-sonnet"): (3.00, 15.00),
    ("anthropic", "claude-3-7-sonnet"): (3.00, 15.00),
    ("anthropic", "claude-sonnet-4"): (3.00, 15.00),
    ("anthropic", "claude-opus-4"): (15.00, 75.00),
}

# OpenRouter ids are `vendor/model`; they are priced like the vendor's own model.
_VENDOR = {"openai": "openai", "anthropic": "anthropic"}


def price_of(provider: str, model_id: str) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens, or None for a model the table does not know."""
    if provider == "openrouter":
        vendor, _, rest = model_id.partition("/")
        if vendor not in _VENDOR:
            return None
        provider, model_id = _VENDOR[vendor], rest
    best: tuple[int, tuple[float, float]] | None = None
    for (p, prefix), price in PRICES.items():
        if (
            p == provider
            and model_id.startswith(prefix)
            and (best is None or len(prefix) > best[0])
        ):
            best = (len(prefix), price)
    return best[1] if best else None


def estimate(
    price: tuple[float, float] | None, input_tokens: int | None, output_tokens: int | None
) -> float | None:
    if price is None or input_tokens is None or output_tokens is None:
        return None
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 8)
