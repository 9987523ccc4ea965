"""numba versions of the shingling and signature steps: one pass per row, no full-size temporaries.

Bit-identical to the numpy code in shingles.py and minhash.py (tests/test_shingles_kernel.py checks it);
imported only through kernels.py. All arithmetic is on explicit uint64: numba turns uint64 mixed with
int64 into float64, which would silently change every hash.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

U64 = np.uint64
PRIME = U64(0x100000001B3)
M1, M2 = U64(0xBF58476D1CE4E5B9), U64(0x94D049BB133111EB)
EMPTY = np.uint32(0xFFFFFFFF)


def _jit(function):
    """nogil: the stage's chunk threads run kernels side by side. cache: only where numba may write its
    cache (next to this file or a user cache dir); else compiled anew in each process."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(function)


@_jit
def mix(h):
    """splitmix64 finaliser, as shingles.mix."""
    h ^= h >> U64(30)
    h *= M1
    h ^= h >> U64(27)
    h *= M2
    return h ^ (h >> U64(31))


HIGH, LOW7, ONES = U64(0x8080808080808080), U64(0x7F7F7F7F7F7F7F7F), U64(0x0101010101010101)


@_jit
def _spaces(w):
    """0x80 in each byte of w that is a space (32, or 9-13: tab to carriage return), else 0. Exact per
    byte: the sums stay under 256, so no carry crosses into the next byte."""
    low = w & LOW7
    control = (low + ONES * U64(119)) & ~(low + ONES * U64(114)) & ~w & HIGH  # 9 <= byte <= 13
    t = w ^ (ONES * U64(32))
    return control | ~(((t & LOW7) + LOW7) | t | LOW7)  # | byte == 32


@_jit
def _past(left):
    """0x80 in the bytes at or past the row's end, `left` bytes ahead: they count as spaces."""
    return U64(0) if left >= 8 else HIGH & ~((U64(1) << U64(8 * left)) - U64(1))


@_jit
def _first(mask):
    """Index of the first byte flagged in a non-zero mask (little-endian: the lowest)."""
    return np.int64(trailing_zeros(mask)) >> 3


@_jit
def _low_bytes(w, n):
    """The first n bytes of w (all 8 if n >= 8), the rest zero: the numpy code's masked read."""
    return w if n >= 8 else w & ((U64(1) << U64(8 * n)) - U64(1))


@_jit
def _span_hash(words, start, end):
    """shingles._hash_spans for one span: first 8 bytes times PRIME plus the size, plus one mixed value
    per further 8-byte read. words[i] is the 8 bytes from byte i."""
    size = end - start
    h = _low_bytes(words[start], size) * PRIME + U64(size)
    k = 1
    for at in range(start + 8, end, 8):
        h += mix(_low_bytes(words[at], end - at) + U64(k) * M1)
        k += 1
    return mix(h)


@_jit
def _word_start(words, p, end):
    """The first non-space byte from p, or the row's end; 8 bytes a step (few branches to mispredict)."""
    while p < end:
        solid = ~(_spaces(words[p]) | _past(end - p)) & HIGH
        if solid:
            return p + _first(solid)
        p += 8
    return end


GATHER = U64(0x0102040810204080)  # times bytes of 0 or 1, brings byte i's bit to bit 56 + i


@_jit
def _solid_bits(words, at, end):
    """Bit i set where byte at + i (i < 64) is before the row's end and not a space."""
    bits = U64(0)
    for c in range(8):
        p = at + 8 * c
        if p >= end:
            break
        solid = ~(_spaces(words[p]) | _past(end - p)) & HIGH
        bits |= (((solid >> U64(7)) * GATHER) >> U64(56)) << U64(8 * c)
    return bits


@_jit
def _word_row(words, start, end, out, count):
    """Hashes of the runs of non-space bytes in start:end into out[count:]; returns the new count.
    Bitmaps of 64 bytes, then their flips (a run's start, then its end) one set bit at a time: a byte
    loop finds each boundary only after the last, a chain of dependent loads and mispredicted branches."""
    carry, token, inside = U64(0), 0, False
    for block in range(start, end, 64):
        bits = _solid_bits(words, block, end)
        flips = bits ^ ((bits << U64(1)) | carry)
        carry = bits >> U64(63)
        while flips:
            at = block + np.int64(trailing_zeros(flips))
            flips &= flips - U64(1)
            if inside:
                out[count] = _span_hash(words, token, at)
                count += 1
            token, inside = at, not inside
    if inside:  # a run up to the row's end at a block's end
        out[count] = _span_hash(words, token, end)
        count += 1
    return count


@_jit
def _char_end(data, p, end):
    """The end of the character starting at p: its continuation bytes (never spaces) follow."""
    p += 1
    while p < end and (data[p] & 0xC0) == 0x80:
        p += 1
    return p


@_jit
def tokens(data, words, offsets, by_chars, out, lengths):
    """Token hashes of every row into `out` (tokens per row into `lengths`); returns how many. A token
    is a run of non-space bytes, or in a `by_chars` row one character."""
    count = 0
    for row in range(len(offsets) - 1):
        first, start, end = count, offsets[row], offsets[row + 1]
        count = _char_row(data, words, start, end, out, count) if by_chars[row] else \
            _word_row(words, start, end, out, count)
        lengths[row] = count - first
    return count


@_jit
def _char_row(data, words, start, end, out, count):
    """Hashes of the characters (not spaces) in start:end into out[count:]; returns the new count."""
    p = _word_start(words, start, end)
    while p < end:
        q = _char_end(data, p, end)
        out[count] = _span_hash(words, p, q)
        count += 1
        p = _word_start(words, q, end)
    return count


@_jit
def _top(ngram):
    """PRIME ** (ngram - 1): the weight of a window's oldest token."""
    top = U64(1)
    for _ in range(ngram - 1):
        top *= PRIME
    return top


@_jit
def _row_shingles(flat, start, n, ngram, top, out):
    """The shingles of one row's n tokens (from flat[start]) into out; returns how many. Windows roll
    (drop the oldest token's term, add the next): mod 2^64 that is the polynomial the numpy code builds
    term by term. A row shorter than an n-gram gives one shingle of all its tokens, marked by its length."""
    acc = U64(0)
    for k in range(min(n, ngram)):
        acc = acc * PRIME + flat[start + k]
    if n < ngram:
        if n:
            out[0] = mix(acc + U64(n))
        return min(n, 1)
    out[0] = mix(acc)
    for i in range(1, n - ngram + 1):
        acc = (acc - flat[start + i - 1] * top) * PRIME + flat[start + i + ngram - 1]
        out[i] = mix(acc)
    return n - ngram + 1


@_jit
def combine(flat, lengths, ngram, full, rows_out, out):
    """shingles.combine: the `full` n-grams of rows with >= ngram tokens in row order, then the one
    shingle of each shorter non-empty row."""
    top, pos, short, start = _top(ngram), 0, full, 0
    for row in range(len(lengths)):
        at = pos if lengths[row] >= ngram else short
        made = _row_shingles(flat, start, lengths[row], ngram, top, out[at:])
        for i in range(at, at + made):
            rows_out[i] = row
        if lengths[row] >= ngram:
            pos += made
        else:
            short += made
        start += lengths[row]


@_jit
def _bin(flat, base, h, num_perm):
    """minhash.signatures for one shingle: its bin from the high bits, a 31-bit value kept if smaller."""
    at = base + np.int64(((h >> U64(32)) * U64(num_perm)) >> U64(32))
    value = np.uint32((h >> U64(1)) & U64(0x7FFFFFFF))
    if value < flat[at]:
        flat[at] = value


@_jit
def signatures(rows, hashes, num_perm, flat):
    """minhash.signatures into `flat` (n_rows * num_perm, all EMPTY on entry): minimum value per bin,
    then the empty bins of each row with shingles densified."""
    live = np.zeros(len(flat) // num_perm, dtype=np.bool_)
    for i in range(len(hashes)):
        _bin(flat, rows[i] * num_perm, hashes[i], num_perm)
        live[rows[i]] = True
    own = np.empty(num_perm, dtype=np.uint32)
    for row in range(len(live)):
        if live[row]:  # rows without shingles stay empty
            _densify(flat, row * num_perm, own)


@_jit
def sketch(flat, lengths, ngram, num_perm, sig):
    """signatures(*combine(flat, lengths, ngram)) row by row, without the shingle arrays: a row's
    shingles and bins stay in cache. `sig` (n_rows * num_perm) is all EMPTY on entry."""
    top, start = _top(ngram), 0
    shingles = np.empty(max(lengths.max() if len(lengths) else 0, 1), dtype=np.uint64)
    own = np.empty(num_perm, dtype=np.uint32)
    for row in range(len(lengths)):
        made = _row_shingles(flat, start, lengths[row], ngram, top, shingles)
        start += lengths[row]
        for i in range(made):
            _bin(sig, row * num_perm, shingles[i], num_perm)
        if made:
            _densify(sig, row * num_perm, own)


@_jit
def _densify(flat, base, own):
    """minhash._densify for the row at flat[base:]: each empty bin j takes the value of the row's
    original bin probe(j, t) for the first t where that bin is filled."""
    num_perm = len(own)
    for j in range(num_perm):  # probes read these, never a bin filled in this loop (loops compile faster than slices)
        own[j] = flat[base + j]
    for j in range(num_perm):
        if own[j] == EMPTY:
            flat[base + j] = _probe(own, j)


@_jit
def _probe(own, j):
    """The value of bin probe(j, t) for the first t where it is filled (EMPTY if none in the numpy
    code's 4096 rounds)."""
    n = U64(len(own))
    for t in range(1, 4097):
        value = own[np.int64(mix(U64(j) * PRIME + U64(t)) % n)]
        if value != EMPTY:
            return value
    return EMPTY
