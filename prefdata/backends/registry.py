"""The backend kinds a spec can name, and what the rest of prefdata needs to know about each, in one place.

A new backend is its module (a class following `base.Backend`, with a `from_spec(spec)` class method) plus one
entry here: the spec's `backend.kind` choices, the cost meter's free backends, the judges' structured-output
mode, the dry run's cache names and the card's "local model" test all read this table. Only the standard
library is imported, so the spec can use it without loading any backend.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    backend: str  # "module:Class" under prefdata.backends; `Class.from_spec(spec)` makes one
    local: bool  # runs weights on this machine: free to call, and a model `align train` can start from
    structured: str  # how a judge asks it for JSON: "native" (a schema API), "engine" (its own structured
    #                  outputs), "grammar" (our grammar engine when installed, else a prefill)
    reward: str | None = None  # "module:Class" of its reward-model backend (a `reward_model` judge)
    cache_name: str | None = None  # its name in cache keys, when another kind's class serves it
    factory: str | None = None  # "module:function" making it, where that is not `Class.from_spec`
    batch: str | None = None  # "module:Class" of its Batch API backend (`batch: true` in a spec)


KINDS = {
    "embedded": Kind("transformers_backend:TransformersBackend", local=True, structured="grammar",
                     cache_name="transformers", factory="embedded:from_spec"),  # the embedded model's folder
    "transformers": Kind("transformers_backend:TransformersBackend", local=True, structured="grammar",
                         reward="reward_transformers:TransformersRewardBackend"),
    "openai": Kind("openai_backend:OpenAIBackend", local=False, structured="native",
                   batch="batch:OpenAIBatchBackend"),
    "anthropic": Kind("anthropic_backend:AnthropicBackend", local=False, structured="native",
                      batch="batch:AnthropicBatchBackend"),
    "vllm": Kind("vllm_backend:VLLMBackend", local=True, structured="engine", reward="reward_vllm:VLLMRewardBackend"),
}

REWARD_KINDS = tuple(name for name, kind in KINDS.items() if kind.reward)
# backend names in cost records: local kinds, and the reward-model backends (`reward-<kind>`)
FREE = frozenset({*(n for name, kind in KINDS.items() if kind.local for n in (name, kind.cache_name or name)),
                  *(f"reward-{name}" for name in REWARD_KINDS)})


def cache_name(kind: str) -> str:
    return KINDS[kind].cache_name or kind


def make(path: str, factory: str | None, spec):
    """A backend from a registry entry: its factory, else its class's `from_spec`."""
    return load(factory)(spec) if factory else load(path).from_spec(spec)


def load(path: str):
    """The class or function a registry entry names ("module:name" under prefdata.backends)."""
    from importlib import import_module

    module, _, name = path.partition(":")
    return getattr(import_module(f"prefdata.backends.{module}"), name)
