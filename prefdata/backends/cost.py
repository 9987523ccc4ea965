"""Tokens and money: a price table per model, a meter per run, and the `max_cost` budget.

Prices are US dollars per million tokens. The defaults below are the providers' list prices as
published when this was written; prices change, so a spec's `prices:` overrides them per model.
Local backends (embedded, transformers, vllm) cost nothing; a Batch API backend's answers cost its
`price_factor` (half) of the listed price. A model with no known price is metered
in tokens and reported as `price_known: false`; it never counts towards `max_cost`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Mapping

from prefdata.backends.base import ChatResponse
from prefdata.backends.registry import FREE

# model -> (input, output) USD per 1M tokens
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "claude-3-5-haiku-latest": (0.80, 4.00),
    "claude-3-7-sonnet-latest": (3.00, 15.00),
    "claude-sonnet-4-0": (3.00, 15.00),
    "claude-opus-4-0": (15.00, 75.00),
}
FREE_BACKENDS = FREE  # local models and reward models (`registry.KINDS`)


@dataclass(frozen=True)
class Price:
    input: float  # USD per 1M input tokens
    output: float  # USD per 1M output tokens

    def of(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input + tokens_out * self.output) / 1e6


def price_table(overrides: Mapping[str, object] | None = None) -> dict[str, Price]:
    """Defaults, then the spec's `prices:` (each a Price, a mapping with input/output, or a pair)."""
    table = {model: Price(*pair) for model, pair in DEFAULT_PRICES.items()}
    for model, value in (overrides or {}).items():
        if isinstance(value, Price):
            table[model] = value
        elif isinstance(value, Mapping):
            table[model] = Price(float(value["input"]), float(value["output"]))
        else:
            table[model] = Price(*map(float, value))  # type: ignore[arg-type]
    return table


@dataclass
class Usage:
    requests: int = 0  # answered by the backend in this run (paid for)
    cached: int = 0  # served from the request cache (free)
    failed: int = 0
    tokens_in: int = 0  # paid tokens (this run's requests)
    tokens_out: int = 0
    cached_tokens_in: int = 0  # tokens of the answers the cache served
    cached_tokens_out: int = 0
    usd: float = 0.0  # spent in this run
    price_known: bool = True


@dataclass
class Meter:
    """Counts every answer of a run per model; `exhausted` once `max_cost` is spent."""

    prices: dict[str, Price] = field(default_factory=price_table)
    max_cost: float | None = None
    usage: dict[str, Usage] = field(default_factory=dict)
    refused: int = 0  # requests not sent because the budget was spent

    def price(self, backend: str, model: str) -> Price | None:
        if backend in FREE_BACKENDS:
            return Price(0.0, 0.0)
        return self.prices.get(model)

    def record(self, backend: str, model: str, answer: ChatResponse, *, cached: bool, factor: float = 1.0) -> None:
        """Count one answer; `factor` scales its price (0.5: a Batch API backend's discount)."""
        used = self.usage.setdefault(model, Usage())
        if cached:
            used.cached += 1
            used.cached_tokens_in += answer.tokens_in
            used.cached_tokens_out += answer.tokens_out
            return
        if answer.error is not None:
            used.failed += 1
        used.requests += 1
        used.tokens_in += answer.tokens_in
        used.tokens_out += answer.tokens_out
        price = self.price(backend, model)
        if price is None:
            used.price_known = False
        else:
            used.usd += price.of(answer.tokens_in, answer.tokens_out) * factor

    def tokens(self) -> dict[str, dict[str, int]]:
        """Tokens of every answer the run used, paid or cached, per model (the card's token line)."""
        return {m: {"tokens_in": u.tokens_in + u.cached_tokens_in, "tokens_out": u.tokens_out + u.cached_tokens_out}
                for m, u in sorted(self.usage.items())}

    @property
    def spent(self) -> float:
        return sum(u.usd for u in self.usage.values())

    @property
    def exhausted(self) -> bool:
        return self.max_cost is not None and self.spent >= self.max_cost

    def line(self) -> str:
        """One short line for the progress bar."""
        tokens = sum(u.tokens_in + u.tokens_out for u in self.usage.values())
        cached = sum(u.cached for u in self.usage.values())
        budget = f" of ${self.max_cost:.2f}" if self.max_cost is not None else ""
        return f"${self.spent:.4f}{budget} · {tokens:,} tok · {cached:,} cached"

    def summary(self) -> dict:
        return {"usd": round(self.spent, 6), "max_cost": self.max_cost, "stopped_by_max_cost": self.refused > 0,
                "refused": self.refused,
                "models": {m: {**asdict(u), "usd": round(u.usd, 6)} for m, u in sorted(self.usage.items())}}
