"""Client-side rate limits: requests per minute and tokens per minute (aiolimiter's leaky buckets).

Tokens are counted before the call from an estimate (4 characters a token, plus `max_tokens`), so a
limit holds even when the server does not report usage. Limiters belong to one event loop; each run
of `run_requests` gets fresh ones, which is also why the state is not shared across runs.
"""

from __future__ import annotations

import asyncio

from prefdata.backends.base import ChatRequest


def estimate_tokens(request: ChatRequest) -> int:
    chars = sum(len(content) for _, content in request.messages) + len(request.prefill)
    return chars // 4 + 4 * len(request.messages) + request.params.max_tokens


class RateLimits:
    def __init__(self, rpm: float | None = None, tpm: float | None = None, period_s: float = 60.0):
        self.rpm, self.tpm, self.period_s = rpm, tpm, period_s  # the limits hold per `period_s` (a minute)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._limiters: tuple = (None, None)

    def _current(self):
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            from aiolimiter import AsyncLimiter

            self._loop = loop
            self._limiters = (_bucket(AsyncLimiter, self.rpm, self.period_s) if self.rpm else None,
                              _bucket(AsyncLimiter, self.tpm, self.period_s) if self.tpm else None)
        return self._limiters

    async def acquire(self, request: ChatRequest) -> None:
        if not (self.rpm or self.tpm):
            return
        requests, tokens = self._current()
        if requests is not None:
            await requests.acquire()
        if tokens is not None:
            await tokens.acquire(min(estimate_tokens(request), tokens.max_rate))


def _bucket(limiter, rate: float, period_s: float):
    """A leaky bucket for `rate` per `period_s`; below 1 (rpm 0.5: one request every two minutes) the bucket
    holds one and the period stretches, since aiolimiter cannot acquire more than its capacity."""
    return limiter(rate, period_s) if rate >= 1 else limiter(1, period_s / rate)
