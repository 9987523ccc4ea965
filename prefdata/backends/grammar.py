"""Grammar-constrained decoding for the local transformers backend: a JSON Schema becomes a token mask per step.

Engine: llguidance (Microsoft's Rust engine behind guidance; also a structured-output backend of vLLM, SGLang
and llama.cpp). Chosen by measurement (benchmarks/grammar_engines.py, on the embedded model): xgrammar,
llguidance and outlines-core all made every judge answer strict JSON valid for the judge's schemas, and on this
loaded CPU their batch times could not be told apart from the model's own. What decided: llguidance is one 8 MB
wheel with no dependency, whereas xgrammar pulls in triton (999 MB on Linux x86_64, of no use on a CPU: the
`embedded` extra would grow by a gigabyte for CI and every user) and outlines compiled slowest (10-28 s, a regex
index per schema) and pulls in four packages. llguidance supports the `maxLength` and integer
`minimum`/`maximum` that keep a verdict within max_tokens, compiles a schema in about 40 ms once its view of the
vocabulary is built (3.6 s, once per tokenizer), and takes one matcher per row of a batch.

One matcher per row of a batch; rows without a schema are not masked. Properties are generated in the order
of the schema's `required` list (the request's schema text has sorted keys, so `properties` lost its order):
the judge's verdict comes first, its free-text rationale last. Near the end of the token budget each row is
steered to close its object: among the tokens the grammar allows, only closers (`"`, `}`, `]`, end of text)
are kept while any is allowed, so an answer cut by max_tokens is still whole JSON when the grammar lets it
close in time, and is an `invalid_json` answer otherwise (never an exception).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.util import find_spec

ENGINE = "llguidance"
RESERVE = 6  # tokens before max_tokens from which a row is steered to close its JSON
_CLOSERS = ('"', "}", "]")


def available() -> bool:
    """Whether the grammar engine can be imported (without importing it)."""
    try:
        return find_spec(ENGINE) is not None
    except (ImportError, ValueError):  # a module set to None in sys.modules (how tests hide it), or a broken one
        return False


def ordered(schema: object) -> object:
    """The schema with each object's properties in the order of its `required` list (then the others)."""
    if isinstance(schema, list):
        return [ordered(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: ordered(value) for key, value in schema.items()}
    properties, required = out.get("properties"), out.get("required")
    if isinstance(properties, dict) and isinstance(required, list):
        first = [k for k in required if k in properties]
        out["properties"] = {k: properties[k] for k in first + [k for k in properties if k not in first]}
    return out


@lru_cache(maxsize=4)
def _tokenizer(tokenizer, vocab: int):
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab)


@lru_cache(maxsize=64)
def _grammar(schema_text: str) -> str:
    import llguidance

    schema = ordered(json.loads(schema_text))
    return llguidance.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": False})


@lru_cache(maxsize=4)
def _closers(tokenizer, vocab: int):
    """The packed bitmask (llguidance's layout) of tokens whose text starts with a closer, and end of text."""
    import numpy as np
    import torch

    allowed = np.zeros(((vocab + 31) // 32) * 32, dtype=bool)
    # A token's own spelling (byte-level or sentencepiece) keeps these ASCII characters as they are.
    pieces = tokenizer.convert_ids_to_tokens(list(range(min(vocab, len(tokenizer)))))
    allowed[: len(pieces)] = [isinstance(p, str) and p.startswith(_CLOSERS) for p in pieces]
    allowed[tokenizer.eos_token_id] = True
    return torch.from_numpy(np.packbits(allowed, bitorder="little").view(np.int32).copy())


class JsonSchemaProcessor:
    """A transformers logits processor: row i decodes under `schemas[i]` (JSON Schema text, or None)."""

    def __init__(self, tokenizer, vocab: int, schemas: list[str | None], max_new_tokens: int):
        import llguidance
        import llguidance.torch as llt

        info = _tokenizer(tokenizer, vocab)
        self.matchers = [None if s is None else llguidance.LLMatcher(info, _grammar(s)) for s in schemas]
        self.mask = llt.allocate_token_bitmask(len(schemas), info.vocab_size)
        self.closers = _closers(tokenizer, info.vocab_size)
        self.left = max_new_tokens
        self.started = False

    def errors(self) -> list[str | None]:
        """Per row, the engine's error (a grammar it could not build or a token it refused), else None."""
        return [m.get_error() or None if m is not None and m.is_error() else None for m in self.matchers]

    def __call__(self, input_ids, scores):
        import llguidance.torch as llt

        last = input_ids[:, -1].tolist()
        self.mask.fill_(-1)  # every token allowed, for rows without a schema
        for i, matcher in enumerate(self.matchers):
            if matcher is None:
                continue
            if self.started and not matcher.is_stopped():
                matcher.consume_token(last[i])
            llt.fill_next_token_bitmask(matcher, self.mask, i)
            if self.left <= RESERVE:
                closing = self.mask[i] & self.closers
                if bool(closing.any()):
                    self.mask[i] = closing
        self.started = True
        self.left -= 1
        scores = scores.clone()  # generate keeps the tensor it passed in as the raw logits (`output_logits`)
        llt.apply_token_bitmask_inplace(scores, self.mask.to(scores.device))
        return scores
