"""The one backend protocol every LLM call goes through (DESIGN.md, rule 2)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 256
    seed: int = 0


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion. `prefill` starts the assistant's answer (the model continues it);
    `sample` tells apart several samples of the same request (n > 1)."""

    messages: tuple[tuple[str, str], ...]  # (role, content) pairs: hashable and order-preserving
    params: SamplingParams = field(default_factory=SamplingParams)
    prefill: str = ""
    sample: int = 0

    @classmethod
    def of(cls, messages: Sequence[dict], **kwargs) -> "ChatRequest":
        return cls(tuple((m["role"], m["content"]) for m in messages), **kwargs)

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    def key(self, backend: str, model: str) -> str:
        """Cache key: everything that changes the answer, and nothing secret."""
        payload = {"backend": backend, "model": model, "messages": self.messages, "params": asdict(self.params),
                   "prefill": self.prefill, "sample": self.sample}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class ChatResponse:
    text: str | None  # None when the request failed; `error` says why
    finish_reason: str | None = None  # "stop", "length", or None on error
    tokens_in: int = 0
    tokens_out: int = 0
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

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
