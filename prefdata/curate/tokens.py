"""Token counts with a Hugging Face tokenizer (imported only when a step asks for tokens)."""

from __future__ import annotations

from functools import lru_cache

import polars as pl


@lru_cache(maxsize=4)
def _tokenizer(name: str | None):
    from transformers import AutoTokenizer

    if name is None:
        from prefdata.backends.embedded import pull

        name = str(pull())
    return AutoTokenizer.from_pretrained(name)


def token_counts(texts: pl.Series, tokenizer: str | None = None, batch: int = 4096) -> pl.Series:
    """Tokens per text, without special tokens; the fast (Rust) tokenizer batches the work."""
    tok = _tokenizer(tokenizer)
    values = texts.fill_null("").to_list()
    counts: list[int] = []
    for start in range(0, len(values), batch):
        ids = tok(values[start:start + batch], add_special_tokens=False)["input_ids"]
        counts.extend(len(x) for x in ids)
    return pl.Series(counts, dtype=pl.Int64)
