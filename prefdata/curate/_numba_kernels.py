"""numba versions of the shingling and signature steps: one pass per row, no full-size temporaries.

Bit-identical to the numpy code in shingles.py and minhash.py (tests/test_shingles_kernel.py checks it);
imported only through kernels.py. All arithmetic is on explicit uint64: numba turns uint64 mixed with
int64 into float64, which would silently change every hash.
"""

from __future__ import annotations

import numba
import numpy as np

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


@_jit
def _is_space(b):
    return b == 32 or (b >= 9 and b <= 13)


@_jit
def _load(data, at, size):
    """Up to 8 bytes from `at`, little-endian, zero-filled: the masked unaligned read of the numpy code."""
    v = U64(0)
    for i in range(min(size, 8)):
        v |= U64(data[at + i]) << U64(8 * i)
    return v


@_jit
def _span_hash(data, start, end):
    """shingles._hash_spans for one span: first 8 bytes times PRIME plus the size, plus one mixed value
    per further 8-byte read."""
    size = end - start
    h = _load(data, start, size) * PRIME + U64(size)
    k = 1
    for at in range(start + 8, end, 8):
        h += mix(_load(data, at, end - at) + U64(k) * M1)
        k += 1
    return mix(h)


@_jit
def tokens(data, offsets, by_chars, out, lengths):
    """Token hashes of every row into `out` (tokens per row into `lengths`); returns how many. A token
    is a run of non-space bytes, or in a `by_chars` row one character (a lead byte and its continuation
    bytes; never a space)."""
    count = 0
    for row in range(len(offsets) - 1):
        first, p, end, chars = count, offsets[row], offsets[row + 1], by_chars[row]
        while p < end:
            if _is_space(data[p]):
                p += 1
                continue
            start = p
            p += 1
            if chars:
                while p < end and (data[p] & 0xC0) == 0x80:
                    p += 1
            else:
                while p < end and not _is_space(data[p]):
                    p += 1
            out[count] = _span_hash(data, start, p)
            count += 1
        lengths[row] = count - first
    return count


@_jit
def combine(flat, lengths, ngram, full, rows_out, out):
    """shingles.combine: the `full` n-grams of rows with >= ngram tokens in row order, then one shingle
    per shorter non-empty row. Windows roll (drop the oldest token's term, add the next): mod 2^64 that
    is the same polynomial the numpy code builds term by term."""
    top = U64(1)  # PRIME ** (ngram - 1), the oldest token's weight
    for _ in range(ngram - 1):
        top *= PRIME
    pos, short, start = 0, full, 0
    for row in range(len(lengths)):
        n = lengths[row]
        if n >= ngram:
            acc = U64(0)
            for k in range(ngram):
                acc = acc * PRIME + flat[start + k]
            for i in range(n - ngram + 1):
                if i:
                    acc = (acc - flat[start + i - 1] * top) * PRIME + flat[start + i + ngram - 1]
                rows_out[pos], out[pos] = row, mix(acc)
                pos += 1
        elif n > 0:  # shorter than an n-gram: all its tokens, marked by its length
            acc = U64(0)
            for k in range(n):
                acc = acc * PRIME + flat[start + k]
            rows_out[short], out[short] = row, mix(acc + U64(n))
            short += 1
        start += n


@_jit
def signatures(rows, hashes, num_perm, flat):
    """minhash.signatures into `flat` (n_rows * num_perm, all EMPTY on entry): minimum value per bin,
    then each empty bin of a row with shingles densified from the row's own original bins."""
    k = U64(num_perm)
    live = np.zeros(len(flat) // num_perm, dtype=np.bool_)
    for i in range(len(hashes)):
        h, row = hashes[i], rows[i]
        cell = ((h >> U64(32)) * k) >> U64(32)
        at = row * num_perm + np.int64(cell)
        value = np.uint32((h >> U64(1)) & U64(0x7FFFFFFF))
        if value < flat[at]:
            flat[at] = value
        live[row] = True
    own = np.empty(num_perm, dtype=np.uint32)  # the row's bins before densifying: probes read these only
    for row in range(len(live)):
        if not live[row]:  # rows without shingles stay empty
            continue
        base = row * num_perm
        for j in range(num_perm):
            own[j] = flat[base + j]
        for j in range(num_perm):
            if own[j] == EMPTY:
                flat[base + j] = _probe(own, j)


@_jit
def _probe(own, j):
    """minhash._densify for bin j: the value of bin probe(j, t) for the first t where it is filled
    (EMPTY if none in the numpy code's 4096 rounds)."""
    n = U64(len(own))
    for t in range(1, 4097):
        value = own[np.int64(mix(U64(j) * PRIME + U64(t)) % n)]
        if value != EMPTY:
            return value
    return EMPTY
