"""Local generation with Hugging Face transformers: batched, left-padded, CPU or GPU.

A request with a JSON Schema decodes under the schema's grammar when the grammar engine is installed
(prefdata.backends.grammar); otherwise the schema goes in the prompt and the answer is checked (and re-asked).
With `params.logprobs = k`, each answer carries its tokens' log-probabilities and k alternatives per token,
from the model's raw distribution (`output_logits`: before the grammar's mask and the sampling processors).

The chat template is rendered to text and tokenized with special tokens parsed (`prompt_texts`), so text
inside a message that spells one of the tokenizer's special or added tokens would become that token:
`special_tokens()` lists them, and the judge defuses them in the text it shows (prefdata.judge.markers)."""

from __future__ import annotations

import hashlib
import warnings
from functools import lru_cache
from typing import Any, Sequence

from prefdata.backends import grammar, structured
from prefdata.backends.base import ChatRequest, ChatResponse, SamplingParams
from prefdata.errors import PrefdataError


@lru_cache(maxsize=2)
def _load(model: str, device: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device, dtype = device_and_dtype(device)
    network = AutoModelForCausalLM.from_pretrained(model, dtype=dtype).to(device).eval()
    return tokenizer, network, device


def device_and_dtype(device: str):
    """("auto" resolved to cuda when there is one, else cpu; bfloat16 on a GPU, float32 on a CPU)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return device, torch.bfloat16 if device.startswith("cuda") else torch.float32


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

    @classmethod
    def from_spec(cls, spec: Any) -> "TransformersBackend":
        """A local folder is named by its weights' hash: new weights in the same folder (a retrained policy) are
        never answered from the cache with the old ones' answers."""
        from prefdata.backends.weights import weights_id

        return cls(weights_id(spec.model), path=spec.model, batch_size=spec.batch_size, device=spec.device,
                   schema_retries=spec.schema_retries)

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
        """Requests with a schema decode under its grammar; without the engine, the schema goes in the prompt."""
        if not any(r.json_schema is not None for r in requests):
            return self._generate(requests)
        if grammar.available():
            # A constrained answer is valid JSON unless max_tokens cut it: asking again with the same budget
            # would not help, so no retry (the answer is checked, and an invalid one is an `invalid_json` error).
            return structured.check_batch(self._generate, requests, self._generate(requests), 0)
        _warn_no_grammar()
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
        from transformers import LogitsProcessorList

        tokenizer, network, device = self._network()
        texts = prompt_texts(tokenizer, requests)
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        sample = params.temperature > 0
        processors = LogitsProcessorList()
        if grammar.available() and any(r.json_schema is not None for r in requests):
            processors.append(grammar.JsonSchemaProcessor(tokenizer, network.config.vocab_size,
                                                          [r.json_schema for r in requests], params.max_tokens))
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
                logits_processor=processors,
                return_dict_in_generate=True,
                output_logits=params.logprobs > 0,
            )
        new = generated.sequences[:, batch["input_ids"].shape[1]:]
        prompt_lengths = batch["attention_mask"].sum(dim=1).tolist()
        answers = []
        for i, (row, tokens_in) in enumerate(zip(new.tolist(), prompt_lengths)):
            ended = tokenizer.eos_token_id in row or tokenizer.pad_token_id in row
            stop = tokenizer.eos_token_id if tokenizer.eos_token_id in row else tokenizer.pad_token_id
            used = row[: row.index(stop)] if ended else row
            text = tokenizer.decode(used, skip_special_tokens=True)
            logprobs = token_logprobs(tokenizer, used, [step[i] for step in generated.logits[:len(used)]],
                                      params.logprobs) if params.logprobs > 0 else None
            answers.append(ChatResponse(text, "stop" if ended else "length", int(tokens_in), len(used),
                                        logprobs=logprobs))
        return answers


_warned = False


def _warn_no_grammar() -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"{grammar.ENGINE} is not installed: JSON answers of local models are asked for in the prompt "
                      f"and checked, not decoded under the schema's grammar (pip install 'prefdata[embedded]')",
                      RuntimeWarning, stacklevel=3)


def token_texts(tokenizer, tokens: list[int]) -> list[str]:
    """Each token's text, such that they join to `decode(tokens)`. A byte-level piece that ends inside a
    multi-byte character decodes to U+FFFD alone, so texts are differences of decoded prefixes, and a token
    whose prefix ends inside a character gets "" (the token completing the character carries it whole)."""
    texts, done = [], ""
    for end in range(1, len(tokens) + 1):
        prefix = tokenizer.decode(tokens[:end], skip_special_tokens=True)
        if prefix.startswith(done) and (end == len(tokens) or not prefix.endswith("\ufffd")):
            texts.append(prefix[len(done):])
            done = prefix
        elif end < len(tokens):
            texts.append("")
        else:  # decoding was not prefix-stable (not seen with byte-level BPE): the last token carries the rest
            texts = [""] * (len(tokens) - 1) + [prefix]
    return texts


def token_logprobs(tokenizer, tokens: list[int], logits: list, k: int) -> list:
    """[token text, log-probability, {alternative text: log-probability}] per token, from raw logits
    (log_softmax over the whole vocabulary); alternatives are the k likeliest tokens, each decoded alone
    (a piece that is part of a multi-byte character shows as U+FFFD; texts that collide keep the higher)."""
    import torch

    if not tokens:
        return []
    scores = torch.log_softmax(torch.stack(logits).float(), dim=-1)
    chosen = scores.gather(1, torch.tensor(tokens, device=scores.device).unsqueeze(1)).squeeze(1).tolist()
    top = scores.topk(min(k, scores.shape[-1]), dim=-1)
    out = []
    for text, logprob, values, ids in zip(token_texts(tokenizer, tokens), chosen, top.values.tolist(),
                                          top.indices.tolist()):
        alternatives: dict[str, float] = {}
        for value, token_id in zip(values, ids):
            alternatives.setdefault(tokenizer.decode([token_id]), value)  # sorted: the first is the higher
        out.append([text, logprob, alternatives])
    return out
