"""`kitaru model ...`: aliases that `kitaru.llm(model=...)` resolves."""

from __future__ import annotations

import typer

from kitaru.cli._output import emit_json, table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Register, list and remove model aliases for kitaru.llm(). An alias names a "
    "provider/model and how to reach it, so flows say model='fast' and the model behind it "
    "can change without code changes. Aliases live in $KITARU_HOME/models.json.\n\n"
    "Example: `kitaru model register fast openai/gpt-4o-mini`",
    no_args_is_help=True,
)

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")


@app.command()
def register(
    name: str = typer.Argument(..., help="Alias to use in kitaru.llm(model=NAME), e.g. fast."),
    model: str = typer.Argument(
        ...,
        help="provider/model: openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
        "ollama/llama3.2, openrouter/meta-llama/llama-3.1-8b-instruct.",
    ),
    base_url: str | None = typer.Option(
        None,
        "--base-url",
        help="API root of an OpenAI-compatible server (vLLM, Ollama, a proxy), e.g. "
        "http://localhost:8000/v1; for anthropic, the root without /v1.",
    ),
    api_key_env: str | None = typer.Option(
        None,
        "--api-key-env",
        help="Environment variable that holds the key for this alias (its name, never the key). "
        "Default: OPENAI_API_KEY, ANTHROPIC_API_KEY or OPENROUTER_API_KEY by provider.",
    ),
    input_price: float | None = typer.Option(
        None, "--input-price", help="USD per 1M input tokens, for cost estimates (0 for local)."
    ),
    output_price: float | None = typer.Option(
        None, "--output-price", help="USD per 1M output tokens, for cost estimates."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Add or replace a model alias.

    Examples:

    - `kitaru model register fast openai/gpt-4o-mini`
    - `kitaru model register local openai/qwen2.5 --base-url http://localhost:8000/v1 --input-price 0 --output-price 0`
    - `kitaru model register claude anthropic/claude-3-5-haiku-latest --api-key-env TEAM_ANTHROPIC_KEY`
    """
    from kitaru._errors import KitaruUsageError
    from kitaru._llm._aliases import ModelAlias
    from kitaru._llm._aliases import register as do_register

    if (input_price is None) != (output_price is None):
        raise KitaruUsageError("give both --input-price and --output-price, or neither")
    alias = ModelAlias(
        name=name,
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        input_price=input_price,
        output_price=output_price,
    )
    replaced = do_register(alias)
    if as_json:
        emit_json({**alias.to_dict(), "replaced": replaced})
        return
    print(f"{'updated' if replaced else 'registered'} {name} -> {model}")
    print(f"use it with: kitaru.llm('...', model={name!r})")


@app.command("list")
def list_(as_json: bool = JSON_OPT) -> None:
    """List model aliases, with where each one sends requests and which key it reads.

    Example: `kitaru model list --json`
    """
    from kitaru._llm import _aliases, _prices

    aliases = sorted(_aliases.load_all().values(), key=lambda a: a.name)
    if as_json:
        emit_json([a.to_dict() for a in aliases])
        return
    if not aliases:
        print(
            "no model aliases yet; register one with: kitaru model register fast openai/gpt-4o-mini"
        )
        return
    rows = []
    for a in aliases:
        provider, model_id = _aliases.check_model(a.model)
        price = (
            (a.input_price, a.output_price)
            if a.input_price is not None and a.output_price is not None
            else _prices.price_of(provider, model_id)
        )
        rows.append(
            [
                a.name,
                a.model,
                a.base_url or "(provider default)",
                a.api_key_env or "(provider default)",
                f"${price[0]:g} / ${price[1]:g}" if price else "unknown",
            ]
        )
    table(["alias", "model", "base url", "key variable", "price in/out per 1M"], rows)


@app.command()
def remove(
    name: str = typer.Argument(..., help="Alias to remove."),
    as_json: bool = JSON_OPT,
) -> None:
    """Remove a model alias. Executions that already ran keep their recorded responses.

    Example: `kitaru model remove fast`
    """
    from kitaru._llm._aliases import remove as do_remove

    removed = do_remove(name)
    if as_json:
        emit_json(removed.to_dict())
    else:
        print(f"removed {removed.name} ({removed.model})")
