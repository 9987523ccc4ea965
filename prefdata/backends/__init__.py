"""LLM backends: one protocol (`base.Backend`), one persistent request cache (`cache`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefdata.backends.base import AsyncBackend, Backend, ChatRequest, ChatResponse, SamplingParams
from prefdata.backends.cache import RequestCache, run_requests

if TYPE_CHECKING:
    from prefdata.spec import BackendSpec

__all__ = ["AsyncBackend", "Backend", "ChatRequest", "ChatResponse", "SamplingParams", "RequestCache",
           "run_requests", "make_backend", "make_reward_backend", "gives_logprobs"]


_CLASSES = {"openai": ("openai_backend", "OpenAIBackend"), "anthropic": ("anthropic_backend", "AnthropicBackend"),
            "vllm": ("vllm_backend", "VLLMBackend"), "transformers": ("transformers_backend", "TransformersBackend"),
            "embedded": ("transformers_backend", "TransformersBackend")}


def gives_logprobs(kind: str) -> bool:
    """Whether a backend kind returns token log-probabilities (its class's `gives_logprobs` flag), without
    making one (the dry run stands in for backends and must build the same requests)."""
    from importlib import import_module

    module, name = _CLASSES[kind]
    return bool(getattr(getattr(import_module(f"prefdata.backends.{module}"), name), "gives_logprobs", False))


def make_backend(spec: "BackendSpec") -> Backend:
    """The backend a spec names. Heavy libraries (torch, SDKs, vLLM) load on the first request, not here."""
    if spec.kind in ("openai", "anthropic"):
        from prefdata.backends.anthropic_backend import AnthropicBackend
        from prefdata.backends.openai_backend import OpenAIBackend

        kind = OpenAIBackend if spec.kind == "openai" else AnthropicBackend
        return kind(spec.model, base_url=spec.base_url, api_key_env=spec.api_key_env, concurrency=spec.concurrency,
                    rpm=spec.rpm, tpm=spec.tpm, timeout_s=spec.timeout_s, max_attempts=spec.max_attempts,
                    retry_initial_s=spec.retry_initial_s, retry_max_s=spec.retry_max_s,
                    schema_retries=spec.schema_retries, batch_size=spec.batch_size)
    if spec.kind == "vllm":
        from prefdata.backends.vllm_backend import VLLMBackend

        return VLLMBackend(spec.model, batch_size=spec.batch_size, engine_args=spec.engine_args,
                           schema_retries=spec.schema_retries)
    from prefdata.backends.transformers_backend import TransformersBackend

    if spec.kind == "embedded":
        from prefdata.backends import embedded

        path = embedded.pull()
        return TransformersBackend(embedded.MODEL_NAME, path=str(path), batch_size=spec.batch_size,
                                   device=spec.device, schema_retries=spec.schema_retries)
    from prefdata.backends.weights import weights_id

    # a local folder is named by its weights' hash: new weights in the same folder (a retrained policy) are never
    # answered from the cache with the old ones' answers
    return TransformersBackend(weights_id(spec.model), path=spec.model, batch_size=spec.batch_size,
                               device=spec.device, schema_retries=spec.schema_retries)


def make_reward_backend(spec: "BackendSpec") -> Backend:
    """The reward-model backend a `reward_model` judge's backend names (kind transformers or vllm); its answers
    are rewards (`prefdata.backends.reward_transformers`, `reward_vllm`). The model loads on the first request."""
    if spec.kind == "vllm":
        from prefdata.backends.reward_vllm import VLLMRewardBackend  # vllm itself loads on the first request

        return VLLMRewardBackend(spec.model, batch_size=spec.batch_size, engine_args=spec.engine_args)
    from prefdata.backends.reward_transformers import TransformersRewardBackend

    return TransformersRewardBackend(spec.model, batch_size=spec.batch_size, device=spec.device)
