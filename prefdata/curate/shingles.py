"""Hashed n-gram shingles of many texts at once, over the texts' UTF-8 bytes: numba kernels where numba is
installed (kernels.py), else numpy (no per-row loop); both give the same hashes.

Words for spaced scripts; characters for scripts written without spaces (Chinese, Japanese, Thai...),
where a word split would make a whole paragraph one token. `auto` chooses per text. Text is
lower-cased; whitespace (space, tab, newlines, no-break and ideographic spaces) separates words.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from prefdata.curate.kernels import NUMBA

Unit = Literal["words", "chars", "auto"]
SPACES = ("\u00a0", "\u3000", "\u2009", "\u202f", "\u2028")
MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)
PRIME = np.uint64(0x100000001B3)
PADDING = pl.Series([" " * 16])  # lets 8-byte reads run past the last text
M1, M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def mix(h: np.ndarray, copy: bool = True) -> np.ndarray:
    """splitmix64 finaliser: spreads every input bit over the whole 64-bit word (in place unless `copy`).
    One scratch array for the shifts: fresh temporaries of a few MB each cost page faults."""
    h = np.array(h, dtype=np.uint64, copy=True) if copy else h
    scratch = np.empty_like(h)
    with np.errstate(over="ignore"):
        for shift, multiplier in ((30, M1), (27, M2)):
            h ^= np.right_shift(h, np.uint64(shift), out=scratch)
            h *= multiplier
        h ^= np.right_shift(h, np.uint64(31), out=scratch)
    return h


def _utf8(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """The lower-cased UTF-8 bytes of all texts end to end (16 bytes of padding), and row offsets.
    The padding is one more row of spaces, appended before the one copy out of Polars."""
    low = texts.fill_null("").str.to_lowercase()
    if low.str.contains_any(list(SPACES)).any():  # multi-byte spaces (ASCII ones are split on directly)
        low = low.str.replace_many(list(SPACES), [" "] * len(SPACES))
    arrow = low.append(PADDING).rechunk().to_arrow()
    _, offsets, data = arrow.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[arrow.offset:arrow.offset + len(arrow)]  # the padding's start last
    return np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1] + 16], offsets - offsets[0]


def _no_space_script(data: np.ndarray) -> np.ndarray:
    """Bytes that start a character of a script written without spaces: CJK and kana (UTF-8 lead bytes
    E3-E9), Thai, Lao, Tibetan (E0 B8-BF), Myanmar and Khmer (E1 80-82, E1 9E-9F)."""
    lead, nxt = data[:-1], data[1:]
    return np.concatenate([((lead >= 0xE3) & (lead <= 0xE9)) | ((lead == 0xE0) & (nxt >= 0xB8) & (nxt <= 0xBF))
                           | ((lead == 0xE1) & (((nxt >= 0x80) & (nxt <= 0x82)) | (nxt == 0x9E) | (nxt == 0x9F))),
                           [False]])


def _per_row(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """How many of the (sorted) byte positions fall in each row."""
    return np.diff(np.searchsorted(positions, offsets))


def char_units(texts: pl.Series) -> pl.Series:
    """True where a text is mostly in a script written without spaces (then n-grams are of characters)."""
    data, offsets = _utf8(texts)
    return pl.Series(_char_rows(data, offsets))


def _char_rows(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    body = data[:-16]
    if body.size == 0 or body.max() < 0xE0:  # no three-byte characters at all: the common case
        return np.zeros(len(offsets) - 1, dtype=bool)
    chars = np.diff(offsets) - _per_row(np.flatnonzero((body & 0xC0) == 0x80), offsets)
    return (_per_row(np.flatnonzero(_no_space_script(data)[:-16]), offsets) * 3 >= chars) & (chars > 0)


def token_hashes(texts: pl.Series, unit: Unit = "words") -> tuple[np.ndarray, np.ndarray]:
    """(flat token hashes, tokens per text). Works on the UTF-8 bytes with numpy: a token is a run of
    non-space bytes (words) or one character (chars)."""
    return tokens_from_bytes(*_utf8(texts), unit)


def tokens_from_bytes(data: np.ndarray, offsets: np.ndarray, unit: Unit = "words") -> tuple[np.ndarray, np.ndarray]:
    """token_hashes over `_utf8`'s bytes and row offsets."""
    by_chars = _by_chars(data, offsets, unit)
    return (_numba_tokens if NUMBA else _numpy_tokens)(data, offsets, by_chars)


def _by_chars(data: np.ndarray, offsets: np.ndarray, unit: Unit) -> np.ndarray:
    """True at the rows cut into characters."""
    if unit == "words":
        return np.zeros(len(offsets) - 1, dtype=bool)
    return _char_rows(data, offsets) if unit == "auto" else np.ones(len(offsets) - 1, dtype=bool)


def _numba_tokens(data: np.ndarray, offsets: np.ndarray, by_chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One pass over each row's bytes. Room for a token per byte: pages past the last token are never
    touched, so never faulted in."""
    flat, lengths = np.empty(max(len(data) - 16, 0), dtype=np.uint64), np.empty(len(offsets) - 1, dtype=np.int64)
    return flat[:NUMBA.tokens(data, _words(data), offsets, by_chars, flat, lengths)], lengths


def _numpy_tokens(data: np.ndarray, offsets: np.ndarray, by_chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not by_chars.any():
        starts, ends = _word_spans(data, offsets)
    else:
        starts, ends = _mixed_spans(data, offsets, by_chars)
    return _hash_spans(data, starts, ends), _per_row(starts, offsets)


def _inside(data: np.ndarray) -> np.ndarray:
    """True at non-space bytes, shifted by one with a False at each end (n + 2 long)."""
    body = data[:len(data) - 16]
    inside = np.zeros(len(body) + 2, dtype=bool)
    np.not_equal(body, 32, out=inside[1:-1])
    inside[1:-1] &= (body - np.uint8(9)) >= 5  # 9-13 (tab to carriage return) wrap round to 0-4
    return inside


def _word_spans(data: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of runs of non-space bytes, cut at row starts, from one scan: where `inside` flips,
    alternately a start and an end. A run going on into the next row gets its row start twice (an end,
    then a start), which keeps the alternation."""
    inside = _inside(data)
    flips = np.flatnonzero(inside[1:] != inside[:-1])
    cuts = np.unique(offsets[1:-1])  # empty rows repeat an offset
    cuts = cuts[inside[cuts] & inside[cuts + 1]]  # the bytes either side of a row start are both in a run
    if cuts.size:
        flips = np.insert(flips, np.repeat(np.searchsorted(flips, cuts), 2), np.repeat(cuts, 2))
    return flips[0::2], flips[1::2]


def _mixed_spans(data: np.ndarray, offsets: np.ndarray, by_chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of tokens where some rows are cut into characters (`by_chars`), the rest into words."""
    n = len(data) - 16
    row_start = np.zeros(n + 1, dtype=bool)
    row_start[offsets[:-1]] = True
    row_start[n] = True
    char_byte = np.repeat(by_chars, np.diff(offsets))
    cut = row_start | np.concatenate([char_byte & ((data[:n] & 0xC0) != 0x80), [True]])
    padded = _inside(data)
    inside, before = padded[1:], padded[:-1]  # before: a token was running at the byte before (n + 1 long)
    return np.flatnonzero(inside & (cut | ~before)), np.flatnonzero(before & (cut | ~inside))


def _words(data: np.ndarray) -> np.ndarray:
    """words[i]: the 8 bytes from byte i as one little-endian integer (an unaligned read; the padding
    keeps the last ones inside the buffer)."""
    return np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))


def _hash_spans(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each byte span data[start:end], read 8 unaligned bytes at a time: one read
    covers most words; longer spans add one read per 8 bytes."""
    words = _words(data)
    size = ends - starts
    hashed = words[starts]
    hashed &= MASKS[np.minimum(size, 8)]
    with np.errstate(over="ignore"):
        hashed *= PRIME  # odd multiplier: still injective for spans of up to 8 bytes
        hashed += size.view(np.uint64)
        long = np.flatnonzero(size > 8)
        if long.size:
            hashed[long] += _tails(words, starts[long], ends[long])
    return mix(hashed, copy=False)


def _tails(words: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """What the bytes after the first 8 add to a long span's hash: the sum of one mixed value per 8-byte
    read. Spans of 9-16 bytes (most long words) take one read, without the ragged bookkeeping."""
    chunks = (ends - starts - 1) // 8  # 8-byte reads after the first 8 bytes
    out = np.empty(len(starts), dtype=np.uint64)
    one = chunks == 1
    at = starts[one] + 8
    with np.errstate(over="ignore"):
        out[one] = mix((words[at] & MASKS[ends[one] - at]) + M1, copy=False)
        many = np.flatnonzero(~one)
        if many.size:
            chunks = chunks[many]
            token = np.repeat(np.arange(many.size), chunks)
            group = np.concatenate([[0], np.cumsum(chunks)[:-1]])
            k = np.arange(chunks.sum()) - np.repeat(group, chunks)
            at = starts[many][token] + 8 + 8 * k
            values = words[at] & MASKS[np.minimum(ends[many][token] - at, 8)]
            out[many] = np.add.reduceat(mix(values + (k.astype(np.uint64) + np.uint64(1)) * M1, copy=False), group)
    return out


def shingle_hashes(texts: pl.Series, ngram: int = 5, unit: Unit = "words") -> tuple[np.ndarray, np.ndarray]:
    """(row, hash) of every n-gram shingle. A text shorter than `ngram` tokens is one shingle; an empty
    text has none. Shingles may repeat within a row (sets are taken where it matters)."""
    flat, lengths = token_hashes(texts, unit)
    return combine(flat, lengths, ngram)


def _whole_windows(first_bad: np.ndarray, bad: np.ndarray, span: int, ngram: int) -> np.ndarray:
    """False at the windows that run past their row's end: `bad` of them from `first_bad` in each row."""
    keep = np.ones(span, dtype=bool)
    for k in range(ngram - 1):
        at = first_bad[bad > k] + k
        keep[at[at < span]] = False
    return keep


def combine(flat: np.ndarray, lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, hash) of the n-grams of token hashes laid end to end (`lengths` tokens per row)."""
    return (_numba_combine if NUMBA else _numpy_combine)(flat, lengths, ngram)


def _numba_combine(flat: np.ndarray, lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    full = int(np.maximum(lengths - ngram + 1, 0).sum())
    total = full + int(np.count_nonzero((lengths > 0) & (lengths < ngram)))
    rows, hashes = np.empty(total, dtype=np.int64), np.empty(total, dtype=np.uint64)
    NUMBA.combine(flat, lengths, ngram, full, rows, hashes)
    return rows, hashes


def _numpy_combine(flat: np.ndarray, lengths: np.ndarray, ngram: int) -> tuple[np.ndarray, np.ndarray]:
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)  # empty input gives empty arrays
    full = lengths >= ngram
    counts = np.where(full, lengths - ngram + 1, 0)
    # polynomial over every window of the flat array (contiguous slices are cheap), then the windows
    # that start a full n-gram inside one row: all but the last ngram - 1 of each row (fewer than
    # ngram per row to strike out, cheaper than a ragged index of the million kept)
    span = max(len(flat) - ngram + 1, 0)
    acc = flat[:span].copy()
    with np.errstate(over="ignore"):
        for k in range(1, ngram if span else 0):
            acc *= PRIME
            acc += flat[k:k + span]
    acc = acc[_whole_windows(starts + counts, lengths - counts, span, ngram)]
    rows = np.repeat(np.arange(len(lengths)), counts)
    short = np.flatnonzero((lengths > 0) & ~full)
    if short.size:  # texts shorter than an n-gram: one shingle of all their tokens, marked by its length
        extra = np.zeros(short.size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for k in range(ngram - 1):
                take = k < lengths[short]
                extra[take] = extra[take] * PRIME + flat[starts[short][take] + k]
        extra += lengths[short].astype(np.uint64)
        rows, acc = np.concatenate([rows, short]), np.concatenate([acc, extra])
    return rows, mix(acc, copy=False)
