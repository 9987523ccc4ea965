"""Reward models on Hugging Face transformers: a sequence-classification model with one logit (Skywork-Reward,
`align train --method reward`) scores each conversation, batched, on CPU or GPU.

A request's messages are the prompt's turns and one assistant turn (the answer). They go through the
model's own chat template as TRL's RewardTrainer renders them in training (the whole conversation, no
generation prompt), and are padded on the right: position ids then count from each row's first token, so
a row gets the same reward batched or alone. The answer is `repr(reward)`. An input longer than the
request's `params.max_tokens` (for a reward request: the longest input scored, part of the cache key)
keeps its last `max_tokens` tokens, since the reward is read at the last one; its `finish_reason` is then
"length" (else "stop") and `tokens_in` is the count scored. Failures are rows with `error`, never
exceptions. `model` is the folder's name and a hash of its weight files, so the request cache never serves
one model's rewards for another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.transformers_backend import device_and_dtype
from prefdata.errors import PrefdataError


def model_folder(path: str) -> str:
    """An `align train --method reward` run folder stands for its `model/` folder."""
    folder = Path(path)
    if not (folder / "config.json").is_file() and (folder / "model" / "config.json").is_file():
        return str(folder / "model")
    return path


@lru_cache(maxsize=2)
def _load(path: str, device: str, weights: str):  # `weights` in the key: a folder trained again loads again
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    architectures = config.architectures or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise PrefdataError(f"{path} is not a reward model (architectures {architectures}, not a sequence "
                            "classifier); train one with `align train --method reward`")
    if config.num_labels != 1:
        raise PrefdataError(f"{path} has {config.num_labels} labels; a reward model has one (num_labels 1)")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not getattr(tokenizer, "chat_template", None):
        raise PrefdataError(f"{path}: the tokenizer has no chat template to render the conversation with")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device, dtype = device_and_dtype(device)
    network = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype).to(device).eval()
    if network.config.pad_token_id is None:  # the model finds each row's last token by it
        network.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer, network, device


class TransformersRewardBackend:
    name = "reward-transformers"
    meter = None  # set by the run context (tokens; local models cost nothing)

    @classmethod
    def from_spec(cls, spec: Any) -> "TransformersRewardBackend":
        return cls(spec.model, batch_size=spec.batch_size, device=spec.device)

    def __init__(self, model: str, *, path: str | None = None, batch_size: int = 8, device: str = "auto",
                 loaded: tuple | None = None):
        self.source = model  # as the spec names it: a folder, a run folder or a Hub id
        self.path = model_folder(path or model)
        self.batch_size = batch_size
        self.device = device
        self.loaded = loaded  # (tokenizer, model) already in memory (align's held-out accuracy)

    @cached_property
    def model(self) -> str:
        """The name in cache keys: folder name and weight hash (a Hub id as it is)."""
        from prefdata.backends.weights import weights_id

        return weights_id(self.path)

    def _network(self):
        if self.loaded is None:
            return _load(self.path, self.device, self.model)
        tokenizer, network = self.loaded
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if network.config.pad_token_id is None:
            network.config.pad_token_id = tokenizer.pad_token_id
        return tokenizer, network.eval(), network.device

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        try:
            return self._score(requests)
        except Exception as exc:  # noqa: BLE001 - one failed batch fails its rows, never the run
            message = str(exc).splitlines()[0][:300] if str(exc) else ""
            return [ChatResponse(None, error=f"backend_error: {type(exc).__name__}: {message}") for _ in requests]

    def _score(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        import torch

        tokenizer, network, device = self._network()
        rows, cut = [], []
        for request in requests:
            ids = list(tokenizer.apply_chat_template(request.as_messages(), tokenize=True,
                                                     return_dict=True)["input_ids"])
            limit = request.params.max_tokens
            cut.append(len(ids) > limit)
            rows.append(ids[-limit:])
        width = max(len(ids) for ids in rows)
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids in rows], device=device)
        mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids in rows], device=device)
        with torch.no_grad():
            rewards = network(input_ids=input_ids, attention_mask=mask).logits[:, 0].float().tolist()
        return [ChatResponse(repr(float(r)), "length" if c else "stop", len(ids), 0)
                for r, c, ids in zip(rewards, cut, rows)]
