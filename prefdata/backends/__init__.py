"""LLM backends: one protocol (`base.Backend`), one persistent request cache (`cache`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefdata.backends.base import Backend, ChatRequest, ChatResponse, SamplingParams
from prefdata.backends.cache import RequestCache, run_requests

if TYPE_CHECKING:
    from prefdata.spec import BackendSpec

__all__ = ["Backend", "ChatRequest", "ChatResponse", "SamplingParams", "RequestCache", "run_requests",
           "make_backend"]


def make_backend(spec: "BackendSpec") -> Backend:
    """The backend a spec names. Heavy libraries load on the first request, not here."""
    from prefdata.backends.transformers_backend import TransformersBackend

    if spec.kind == "embedded":
        from prefdata.backends import embedded

        path = embedded.pull()
        return TransformersBackend(embedded.MODEL_NAME, path=str(path), batch_size=spec.batch_size,
                                   device=spec.device)
    return TransformersBackend(spec.model, batch_size=spec.batch_size, device=spec.device)
