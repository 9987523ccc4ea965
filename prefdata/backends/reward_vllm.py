"""Reward models on vLLM: a sequence-classification model with one label scores each conversation.

A request is a ChatRequest whose messages are the prompt's turns plus one ("assistant", answer) turn; its
answer's `text` is the scalar reward as `repr(float)` (the raw logit: no sigmoid), or a row with `error`.
vLLM 0.32 runs such a model with `runner="pooling"` and `LLM.classify` (there is no `LLM.reward`); the
conversation goes through the model's own chat template, tokenized here so that vLLM and transformers read
the same token ids.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Sequence

from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.weights import weights_id


@lru_cache(maxsize=1)
def _engine(path: str, engine_json: str) -> Any:
    from prefdata.backends.vllm_backend import _engine as start

    return start.__wrapped__(path, engine_json)  # its own slot: a generator's engine stays loaded beside it


class VLLMRewardBackend:
    name = "reward-vllm"
    meter = None

    @classmethod
    def from_spec(cls, spec: Any) -> "VLLMRewardBackend":
        return cls(spec.model, batch_size=spec.batch_size, engine_args=spec.engine_args)

    def __init__(self, model: str, *, batch_size: int = 64, engine_args: dict | None = None):
        self.path = str(model)
        self.model = weights_id(model)  # cache keys follow the weights, not the folder's name
        self.batch_size = batch_size
        self.engine_args = {"runner": "pooling", **(engine_args or {})}

    def _ids(self, tokenizer: Any, request: ChatRequest) -> list[int] | str:
        """The conversation's token ids through the model's chat template, or why there are none."""
        try:
            ids = tokenizer.apply_chat_template(request.as_messages(), tokenize=True)
        except Exception as exc:  # noqa: BLE001 - a template that refuses this conversation fails its row
            return f"chat_template: {type(exc).__name__}: {exc}"[:400]
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return list(ids) if ids else "chat_template: the conversation renders to no tokens"

    def _classify(self, llm: Any, prompts: list[list[int]]) -> list[ChatResponse]:
        from vllm import PoolingParams

        try:
            results = llm.classify([{"prompt_token_ids": ids} for ids in prompts], use_tqdm=False,
                                   pooling_params=PoolingParams(use_activation=False))
        except Exception as exc:  # noqa: BLE001 - vLLM checks a whole call first: then each alone
            if len(prompts) > 1:
                return [answer for ids in prompts for answer in self._classify(llm, [ids])]
            return [ChatResponse(None, error=f"backend_error: {type(exc).__name__}: {exc}"[:400])]
        out = []
        for ids, result in zip(prompts, results):
            logits = list(result.outputs.probs)
            if len(logits) != 1:
                out.append(ChatResponse(None, error=f"backend_error: a reward model has 1 label; this one has "
                                                    f"{len(logits)}"))
            else:
                out.append(ChatResponse(repr(float(logits[0])), "stop", len(ids), 0))
        return out

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        llm = _engine(self.path, json.dumps(self.engine_args, sort_keys=True))
        tokenizer = llm.get_tokenizer()
        ids = [self._ids(tokenizer, r) for r in requests]
        good = [i for i, x in enumerate(ids) if not isinstance(x, str)]
        out = [ChatResponse(None, error=x) if isinstance(x, str) else None for x in ids]
        for i, answer in zip(good, self._classify(llm, [ids[i] for i in good]) if good else []):
            out[i] = answer
        return out  # type: ignore[return-value]
