"""Local generation with Hugging Face transformers: batched, left-padded, CPU or GPU.

The chat template is rendered to text and tokenized with special tokens parsed (`prompt_texts`), so text
inside a message that spells one of the tokenizer's special or added tokens would become that token:
`special_tokens()` lists them, and the judge defuses them in the text it shows (prefdata.judge.markers)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Sequence

from prefdata.backends import structured
from prefdata.backends.base import ChatRequest, ChatResponse, SamplingParams
from prefdata.errors import PrefdataError


@lru_cache(maxsize=2)
def _load(model: str, device: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    network = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(device).eval()
    return tokenizer, network, device


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def special_tokens_of(tokenizer) -> tuple[str, ...]:
    """Every special and added token of `tokenizer` (sorted): the text its template must not meet as is."""
    added = [token.content for token in getattr(tokenizer, "added_tokens_decoder", {}).values()]
    return tuple(sorted(set(tokenizer.all_special_tokens) | set(added)))


def special_tokens_at(path: str, model: str | None = None) -> tuple[str, ...]:
    """The special and added tokens of the tokenizer at `path` (a folder or Hub id), loaded alone."""
    try:
        return special_tokens_of(_tokenizer(path))
    except Exception as exc:  # noqa: BLE001 - a missing or broken model folder, an unknown Hub id
        raise PrefdataError(f"cannot load the tokenizer of {model or path} ({path}) to defuse its special tokens "
                            f"in judged text: {exc}"[:400]) from None


def prompt_texts(tokenizer, requests: Sequence[ChatRequest]) -> list[str]:
    """Each request as the model reads it: its messages through the chat template, then the prefill."""
    return [tokenizer.apply_chat_template(r.as_messages(), tokenize=False, add_generation_prompt=True) + r.prefill
            for r in requests]


def _seed(requests: Sequence[ChatRequest]) -> int:
    # Deterministic per batch: the same batch of requests samples the same answers.
    digest = hashlib.sha256("".join(repr(r) for r in requests).encode()).digest()
    return int.from_bytes(digest[:4], "little")


class TransformersBackend:
    name = "transformers"
    meter = None  # set by the run context (tokens; local models cost nothing)
    gives_logprobs = True  # judges ask for token log-probabilities (SamplingParams.logprobs) to read confidence

    def __init__(self, model: str, *, path: str | None = None, batch_size: int = 8, device: str = "auto",
                 schema_retries: int = 2, loaded: tuple | None = None):
        self.model = model  # the name recorded in tables and cache keys: it must tell the weights apart
        self.path = path or model  # where to load it from
        self.batch_size = batch_size
        self.device = device
        self.schema_retries = schema_retries
        self.loaded = loaded  # (tokenizer, model) already in memory (align's policy), used instead of loading

    def _network(self):
        if self.loaded is None:
            return _load(self.path, self.device)
        tokenizer, network = self.loaded
        tokenizer.padding_side = "left"  # generation continues the prompt: pad on the left
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer, network.eval(), network.device

    def special_tokens(self) -> tuple[str, ...]:
        """This model's special and added tokens, from its tokenizer alone (the weights are not loaded)."""
        if self.loaded is not None:
            return special_tokens_of(self.loaded[0])
        return special_tokens_at(self.path, self.model)

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """Plain generate has no constrained decoding: a schema goes in the prompt and the answer is checked."""
        asked = [structured.in_prompt(r, 0) if r.json_schema is not None else r for r in requests]
        return structured.check_batch(self._generate, asked, self._generate(asked), self.schema_retries)

    def _generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        out: list[ChatResponse | None] = [None] * len(requests)
        groups: dict[SamplingParams, list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(request.params, []).append(i)
        for params, indexes in groups.items():
            try:
                answers = self._generate_group([requests[i] for i in indexes], params)
            except Exception as exc:  # one failed batch fails its rows, never the run
                answers = [ChatResponse(None, error=f"backend_error: {type(exc).__name__}: {exc}") for _ in indexes]
            for i, answer in zip(indexes, answers):
                out[i] = answer
        return out  # type: ignore[return-value]

    def _generate_group(self, requests: Sequence[ChatRequest], params: SamplingParams) -> list[ChatResponse]:
        import torch

        tokenizer, network, device = self._network()
        texts = prompt_texts(tokenizer, requests)
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        sample = params.temperature > 0
        torch.manual_seed(params.seed + _seed(requests))
        with torch.no_grad():
            generated = network.generate(
                **batch,
                max_new_tokens=params.max_tokens,
                do_sample=sample,
                temperature=params.temperature if sample else None,
                top_p=params.top_p if sample else None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
            )
        new = generated[:, batch["input_ids"].shape[1]:]
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        answers = []
        for row, tokens_in in zip(new.tolist(), prompt_lengths):
            ended = tokenizer.eos_token_id in row or tokenizer.pad_token_id in row
            stop = tokenizer.eos_token_id if tokenizer.eos_token_id in row else tokenizer.pad_token_id
            used = row[: row.index(stop)] if ended else row
            text = tokenizer.decode(used, skip_special_tokens=True)
            answers.append(ChatResponse(text, "stop" if ended else "length", int(tokens_in), len(used)))
        return answers
