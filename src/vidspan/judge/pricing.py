"""Estimated cost of judge calls, from list prices per million tokens.

These are ESTIMATES. The prices below are the providers' public list prices for standard (non-batch,
non-cached) API use as recalled for ``PRICES_AS_OF``; they were not fetched from the providers, prices
change, and discounts (prompt caching, batch APIs, committed-use or regional pricing, Azure) are ignored.
Check the providers' pricing pages before quoting a cost:

- OpenAI: https://openai.com/api/pricing/
- Google Gemini API: https://ai.google.dev/gemini-api/docs/pricing
- DeepSeek: https://api-docs.deepseek.com/quick_start/pricing

A model without a price here (a local vLLM server, a new snapshot) costs ``None``; the judge counts such
calls in ``usage.calls_without_price`` instead of pretending they were free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PRICES_AS_OF = "2025-06 (recalled list prices; not verified against the providers' pages)"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input (prompt) and output (completion, thinking included) tokens.

    Attributes:
        input_per_million: Input price.
        output_per_million: Output price.
        long_context_tokens: Prompt size above which the long-context prices apply (``None``: no tier).
        long_input_per_million: Input price above ``long_context_tokens``.
        long_output_per_million: Output price above ``long_context_tokens``.
    """

    input_per_million: float
    output_per_million: float
    long_context_tokens: int | None = None
    long_input_per_million: float | None = None
    long_output_per_million: float | None = None


PRICES: dict[str, Price] = {
    # OpenAI
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-3.5-turbo-0125": Price(0.50, 1.50),
    # Google (Gemini API, paid tier; 2.5 Pro costs more for prompts over 200k tokens)
    "gemini-2.5-pro": Price(1.25, 10.00, 200_000, 2.50, 15.00),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.0-flash": Price(0.10, 0.40),
    # DeepSeek (cache-miss input)
    "deepseek-chat": Price(0.27, 1.10),
}

ALIASES = {
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",  # the alias pointed at the 0125 snapshot
    "gpt-35-turbo-0125": "gpt-3.5-turbo-0125",  # Azure's spelling, as in AutoDQ
    "gpt-35-turbo": "gpt-3.5-turbo-0125",
}

# a dated OpenAI snapshot (gpt-4.1-2025-04-14) or a numbered Gemini version (gemini-2.0-flash-001)
_DATED_SNAPSHOT = re.compile(r"^(?P<base>.+?)-(?:\d{4}-\d{2}-\d{2}|0\d\d)$")


def price_of(model: str) -> Price | None:
    """The list price of ``model`` (a name, a dated snapshot such as ``gpt-4.1-2025-04-14``, or a
    ``models/``-prefixed Gemini name), or ``None`` when unknown."""
    if not isinstance(model, str):
        return None
    name = model.strip().lower().removeprefix("models/")
    name = ALIASES.get(name, name)
    if name in PRICES:
        return PRICES[name]
    match = _DATED_SNAPSHOT.match(name)
    if match:
        base = ALIASES.get(match["base"], match["base"])
        return PRICES.get(base)
    return None


def estimate_cost(model: str, prompt_tokens: int | None, completion_tokens: int | None) -> float | None:
    """Estimated USD cost of one call (see the module docstring: list prices, an estimate).

    Returns:
        The cost, or ``None`` when the model has no known price or the reply had no token counts.
    """
    price = price_of(model)
    if price is None or prompt_tokens is None or completion_tokens is None:
        return None
    input_rate, output_rate = price.input_per_million, price.output_per_million
    if price.long_context_tokens is not None and prompt_tokens > price.long_context_tokens:
        input_rate = price.long_input_per_million or input_rate
        output_rate = price.long_output_per_million or output_rate
    return (prompt_tokens * input_rate + completion_tokens * output_rate) / 1_000_000
