"""What the HTTP backends (OpenAI-compatible, Anthropic) share: one client per event loop, concurrency,
client-side rate limits, retries, the structured-output check and the API key from the environment."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from typing import Any, Awaitable, Sequence

from prefdata.backends import structured
from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.ratelimit import RateLimits
from prefdata.backends.retry import Failure, with_retries
from prefdata.errors import PrefdataError
from prefdata.redact import url_secrets


def run_sync(coro: Awaitable) -> Any:
    """Run a coroutine from sync code, also where a loop already runs (a notebook): then in a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class HTTPBackend:
    name = "http"
    default_key_env = ""
    meter = None  # set by the run context: cost accounting and `max_cost`

    def __init__(self, model: str, *, base_url: str | None = None, api_key_env: str | None = None,
                 concurrency: int = 8, rpm: float | None = None, tpm: float | None = None, timeout_s: float = 60,
                 max_attempts: int = 6, retry_initial_s: float = 1.0, retry_max_s: float = 60.0,
                 schema_retries: int = 2, batch_size: int = 64):
        self.model = model
        self.base_url = base_url
        self.key_env = api_key_env or self.default_key_env
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.limits = RateLimits(rpm, tpm)
        self.timeout_s = timeout_s
        self.retry = dict(max_attempts=max_attempts, initial_s=retry_initial_s, max_wait_s=retry_max_s)
        self.schema_retries = schema_retries
        self._clients: dict[int, Any] = {}

    @classmethod
    def from_spec(cls, spec: Any) -> "HTTPBackend":
        return cls(spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env, concurrency=spec.concurrency,
                   rpm=spec.rpm, tpm=spec.tpm, timeout_s=spec.timeout_s, max_attempts=spec.max_attempts,
                   retry_initial_s=spec.retry_initial_s, retry_max_s=spec.retry_max_s,
                   schema_retries=spec.schema_retries, batch_size=spec.batch_size)

    def api_key(self) -> str:
        """The key from the environment variable the spec names; a local server (base_url) may need none."""
        key = os.environ.get(self.key_env)
        if key:
            return key
        if self.base_url:
            return "not-needed"
        raise PrefdataError(f"{self.name} backend: set the environment variable {self.key_env} to your API key "
                            f"(or name another one with api_key_env)")

    def _client(self) -> Any:
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = self._make_client(self.api_key())
        return self._clients[loop]

    async def aclose(self) -> None:
        client = self._clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.close()

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        """One request: rate limit, retries, and the bounded structured-output retry."""
        answer = await self._checked(request, native=True)
        schema = request.schema
        if schema is None:
            return answer
        answer, ok = structured.settle(answer, schema)
        for attempt in range(1, self.schema_retries + 1):
            if ok:
                break
            again = await self._checked(structured.in_prompt(request, attempt), native=True)
            answer, ok = structured.settle(structured.add_usage(again, answer), schema)
        return answer

    async def _checked(self, request: ChatRequest, native: bool) -> ChatResponse:
        await self.limits.acquire(request)
        try:
            return await with_retries(lambda: self._attempt(request, native), **self.retry,
                                      secrets=(os.environ.get(self.key_env), *url_secrets(self.base_url)))
        except Failure as failure:
            return ChatResponse(None, error=str(failure))

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """The sync protocol: the batch concurrently, answers in order."""

        async def all_of() -> list[ChatResponse]:
            gate = asyncio.Semaphore(self.concurrency)

            async def one(request: ChatRequest) -> ChatResponse:
                async with gate:
                    return await self.acomplete(request)

            try:
                return list(await asyncio.gather(*(one(r) for r in requests)))
            finally:
                await self.aclose()

        return run_sync(all_of())

    # ---- per API ----
    def _make_client(self, api_key: str) -> Any:
        raise NotImplementedError

    async def _attempt(self, request: ChatRequest, native: bool) -> ChatResponse:
        """One HTTP call; raises on failure (classified by `retry.classify`)."""
        raise NotImplementedError


def strip_prefill(text: str, prefill: str) -> str:
    """APIs that cannot continue a message may repeat the prefill: keep only the continuation."""
    stripped = text.lstrip()
    return stripped[len(prefill.strip()):] if prefill.strip() and stripped.startswith(prefill.strip()) else text


__all__ = ["HTTPBackend", "run_sync", "strip_prefill"]
