"""Cost of a call from its token counts and the configured price table (USD per 1M tokens)."""

from __future__ import annotations

from nanoresearch.config import Price


def call_cost(prices: dict[str, Price], kind: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Dollars for one call at the model's price in the table, whatever its endpoint; without one,
    0 for the model on this machine and None (unknown) for any other."""
    price = model_price(prices, model)
    if price is None:
        return 0.0 if kind == "local" else None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def model_price(prices: dict[str, Price], model: str) -> Price | None:
    """The model's price: its own entry, else the longest listed name it starts with."""
    if model in prices:
        return prices[model]
    # Dated model names ("gpt-4o-mini-2024-07-18") inherit the price of their family.
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None
