"""Hashed n-gram shingles of many texts at once: Polars splits and hashes, numpy combines n-grams.

Words for spaced scripts; characters for scripts written without spaces (Chinese, Japanese, Thai...),
where a word split would make a whole paragraph one token. `auto` chooses per text.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

Unit = Literal["words", "chars", "auto"]
NO_SPACE_SCRIPTS = r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}]"
PRIME = np.uint64(0x100000001B3)
M1, M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole 64-bit word."""
    h = (h ^ (h >> np.uint64(30))) * M1
    h = (h ^ (h >> np.uint64(27))) * M2
    return h ^ (h >> np.uint64(31))


def char_units(texts: pl.Series) -> pl.Series:
    """True where a text is mostly in a script written without spaces (then n-grams are of characters)."""
    chars = texts.str.len_chars()
    return (texts.str.count_matches(NO_SPACE_SCRIPTS) * 3 >= chars) & (chars > 0)


def _tokens(texts: pl.Series, chars: pl.Series) -> pl.Series:
    """Lower-cased tokens per text: words split on whitespace, or characters (whitespace removed)."""
    low = pl.DataFrame({"t": texts.fill_null(""), "c": chars}).lazy()
    words = pl.col("t").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars().str.split(" ")
    letters = pl.col("t").str.to_lowercase().str.replace_all(r"\s+", "").str.split("")
    tokens = pl.when(pl.col("c")).then(letters).otherwise(words).list.eval(pl.element().filter(pl.element() != ""))
    return low.select(
        tokens.list.eval(pl.element().hash(0xC0FFEE)).alias("h")
    ).collect(engine="streaming")["h"]


def shingle_hashes(texts: pl.Series, ngram: int = 5, unit: Unit = "words") -> tuple[np.ndarray, np.ndarray]:
    """(row, hash) of every n-gram shingle. A text shorter than `ngram` tokens is one shingle; an empty
    text has none. Shingles may repeat within a row (sets are taken where it matters)."""
    if unit == "auto":
        chars = char_units(texts)
    else:
        chars = pl.repeat(unit == "chars", texts.len(), eager=True)
    tokens = _tokens(texts, chars)
    lengths = tokens.list.len().to_numpy().astype(np.int64)
    flat = tokens.explode(empty_as_null=False, keep_nulls=False).to_numpy()
    return combine(flat, lengths, ngram)


def combine(flat: np.ndarray, lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """n-gram hashes from token hashes laid end to end (`lengths` tokens per row)."""
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    row = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(len(flat)) - starts[row]
    span = np.minimum(lengths, ngram)[row]  # short texts: one shingle of all their tokens
    first = pos <= lengths[row] - span
    acc = np.zeros(len(flat), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(ngram):
            shifted = np.zeros(len(flat), dtype=np.uint64)
            if k < len(flat):
                shifted[: len(flat) - k] = flat[k:]
            acc = acc * PRIME + np.where(k < span, shifted, np.uint64(0))
        return row[first], mix(acc[first] + span[first].astype(np.uint64))
