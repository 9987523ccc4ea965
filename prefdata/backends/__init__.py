"""LLM backends: one protocol (`base.Backend`), one persistent request cache (`cache`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefdata.backends.base import AsyncBackend, Backend, ChatRequest, ChatResponse, SamplingParams
from prefdata.backends.cache import RequestCache, run_requests

if TYPE_CHECKING:
    from prefdata.spec import BackendSpec

__all__ = ["AsyncBackend", "Backend", "ChatRequest", "ChatResponse", "SamplingParams", "RequestCache",
           "run_requests", "make_backend", "make_reward_backend", "gives_logprobs"]


def gives_logprobs(kind: str) -> bool:
    """Whether a backend kind returns token log-probabilities (its class's `gives_logprobs` flag), without
    making one (the dry run stands in for backends and must build the same requests)."""
    from prefdata.backends.registry import KINDS, load

    return bool(getattr(load(KINDS[kind].backend), "gives_logprobs", False))


def make_backend(spec: "BackendSpec") -> Backend:
    """The backend a spec names (`registry.KINDS`). Heavy libraries (torch, SDKs, vLLM) load on the first
    request, not here."""
    from prefdata.backends.registry import KINDS, make

    kind = KINDS[spec.kind]
    if getattr(spec, "batch", False):
        return make(kind.batch, None, spec)
    return make(kind.backend, kind.factory, spec)


def make_reward_backend(spec: "BackendSpec") -> Backend:
    """The reward-model backend a `reward_model` judge's backend names; its answers are rewards. The model loads
    on the first request."""
    from prefdata.backends.registry import KINDS, make

    return make(KINDS[spec.kind].reward, None, spec)
