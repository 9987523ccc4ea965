"""The one backend protocol every LLM call goes through (DESIGN.md, rule 2)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0
    logprobs: int = 0  # alternatives per generated token to return with their log-probabilities (0: none)


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion. `prefill` starts the assistant's answer (the model continues it);
    `sample` tells apart several samples of the same request (n > 1)."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable and order-preserving
    params: SamplingParams = field(default_factory=SamplingParams)
    prefill: str = ""
    sample: int = 0
    json_schema: str | None = None  # JSON Schema the answer must match (a dict is accepted and stored as JSON)

    def __post_init__(self) -> None:
        if self.json_schema is not None and not isinstance(self.json_schema, str):
            # Canonical text: the request stays hashable and its cache key does not depend on key order.
            object.__setattr__(self, "json_schema", json.dumps(self.json_schema, sort_keys=True))

    @property
    def schema(self) -> dict | None:
        return None if self.json_schema is None else json.loads(self.json_schema)

    @classmethod
    def of(cls, messages: Sequence[dict], **kwargs) -> "ChatRequest":
        return cls(tuple((m["role"], m["content"]) for m in messages), **kwargs)

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def key(self, backend: str, model: str) -> str:
        """Cache key: everything that changes the answer, and nothing secret."""
        params = {k: v for k, v in self.params.__dict__.items() if k != "logprobs" or v}  # old keys stay valid
        payload = {"backend": backend, "model": model, "messages": self.messages, "params": params,
                   "prefill": self.prefill, "sample": self.sample}
        if self.json_schema is not None:  # only when set, so keys made before the field existed stay valid
            payload["json_schema"] = self.json_schema
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class ChatResponse:
    text: str | None  # None when the request failed; `error` says why
    finish_reason: str | None = None  # "stop", "length", or None on error
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None  # "category: message", e.g. "rate_limited: 429 ... (after 6 attempts)"
    # Per generated token, when the request asked for `logprobs` and the backend gives them:
    # [token text, its log-probability, {alternative token text: log-probability}] (JSON-friendly lists).
    # The tokens' texts joined are the answer as generated (before any structured-output normalisation).
    logprobs: list | None = None

    @property
    def reason(self) -> str | None:
        """The error's category (the text before the first colon), or None when the request succeeded."""
        return None if self.error is None else self.error.split(":", 1)[0].strip()

    def to_json(self) -> str:
        # Spelled out rather than dataclasses.asdict: this runs once per answer, and asdict is slow.
        data = {"text": self.text, "finish_reason": self.finish_reason, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "error": self.error}
        if self.logprobs is not None:
            data["logprobs"] = self.logprobs
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> "ChatResponse":
        return cls(**json.loads(text))


class Backend(Protocol):
    name: str        # backend kind, e.g. "transformers"
    model: str       # model id or path, as recorded in tables and cache keys
    batch_size: int  # requests per `generate` call; results are cached after each call

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """Answer each request, in order. A failed request gives a response with `error`, not an exception."""
        ...


class AsyncBackend(Backend, Protocol):
    """A backend that answers one request at a time, concurrently (HTTP APIs). `run_requests` prefers
    `acomplete` when a backend has it, runs up to `concurrency` at once and commits each answer as it comes."""

    concurrency: int

    async def acomplete(self, request: ChatRequest) -> ChatResponse:
        """Answer one request; failures come back as a response with `error`, never as an exception."""
        ...

    async def aclose(self) -> None:
        """Release connections made in the current event loop."""
        ...
