"""Cost of a call from its token counts and the configured price table (USD per 1M tokens)."""

from __future__ import annotations

from nanoresearch.config import Price


def call_cost(prices: dict[str, Price], kind: str, model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """Dollars for one call; 0 for the local model; None when the model has no known price."""
    if kind == "local":
        return 0.0
    price = prices.get(model) or _longest_prefix_match(prices, model)
    if price is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def _longest_prefix_match(prices: dict[str, Price], model: str) -> Price | None:
    # Dated model names ("gpt-4o-mini-2024-07-18") inherit the price of their family.
    matches = [name for name in prices if model.startswith(name)]
    return prices[max(matches, key=len)] if matches else None
