"""Tokens: loading a Hugging Face tokenizer, rendering conversations through its chat template, counting.

The one home for them: curation's token lengths (`length_balance`/`filter` with `unit: tokens`), the
validators' training pre-flight and `align train`'s length checks all go through these functions, so a prompt
has the same length in tokens wherever it is measured. transformers is imported only when a tokenizer loads.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl

from prefdata.errors import PrefdataError


def load_tokenizer(path: str | Path) -> Any:
    """A tokenizer from a folder or Hub id; one line naming the folder when it cannot load."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # transformers raises OSError, ValueError and others for a bad folder
        raise PrefdataError(f"{path}: cannot load a tokenizer ({type(exc).__name__}: {exc})") from None


@lru_cache(maxsize=4)
def cached_tokenizer(name: str | None) -> Any:
    """A tokenizer kept for the process (None: the embedded model's)."""
    if name is None:
        from prefdata.backends.embedded import pull

        name = str(pull())
    return load_tokenizer(name)


def messages(turns: list[dict]) -> list[dict[str, str]]:
    """Turns as a chat template takes them: role and content only."""
    return [{"role": t["role"], "content": t["content"]} for t in turns]


def render_prompt(tok: Any, turns: list[dict]) -> str:
    """The prompt as the model sees it before answering (the generation prompt added)."""
    return tok.apply_chat_template(messages(turns), tokenize=False, add_generation_prompt=True)


def render(tok: Any, turns: list[dict]) -> str:
    """A whole conversation through the chat template."""
    return tok.apply_chat_template(messages(turns), tokenize=False)


def count(tok: Any, texts: list[str], batch: int = 4096) -> list[int]:
    """Tokens per text, without adding special tokens (a rendered template already holds them); the fast (Rust)
    tokenizer batches the work."""
    counts: list[int] = []
    for start in range(0, len(texts), batch):
        counts.extend(len(ids) for ids in tok(texts[start:start + batch], add_special_tokens=False)["input_ids"])
    return counts


def token_counts(texts: pl.Series, tokenizer: str | None = None, batch: int = 4096) -> pl.Series:
    """Tokens per text (curation's `unit: tokens`), with the named tokenizer or the embedded model's."""
    return pl.Series(count(cached_tokenizer(tokenizer), texts.fill_null("").to_list(), batch), dtype=pl.Int64)
