"""MinHash LSH over hashed shingles, vectorised with numpy (no per-row Python loop).

Signatures use one-permutation hashing (Li, Owen & Zhang 2012) with optimal densification
(Shrivastava 2017): each shingle hash is split into a bin (its high bits) and a value (its low bits);
a row's signature is the minimum value per bin, and an empty bin borrows the value of a bin picked by a
fixed hash sequence. Every bin then collides for two rows with probability equal to their Jaccard
similarity, as with `num_perm` independent permutations, but the cost is one pass over the shingles
instead of `num_perm` passes (measured in benchmarks/curate_1m.py).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from prefdata.curate.kernels import NUMBA
from prefdata.curate.shingles import PRIME, combine, mix

EMPTY = np.uint32(0xFFFFFFFF)  # values are 31-bit, so no value equals it


def signatures(rows: np.ndarray, hashes: np.ndarray, n_rows: int, num_perm: int = 128) -> np.ndarray:
    """(n_rows, num_perm) uint32 MinHash signatures; a row without shingles is all EMPTY."""
    if NUMBA:
        flat = np.full(n_rows * num_perm, EMPTY, dtype=np.uint32)
        NUMBA.signatures(rows.astype(np.int64, copy=False), hashes, num_perm, flat)
        return flat.reshape(n_rows, num_perm)
    return _numpy_signatures(rows, hashes, n_rows, num_perm)


def token_signatures(flat: np.ndarray, lengths: np.ndarray, ngram: int, num_perm: int = 128) -> np.ndarray:
    """signatures of the n-gram shingles of token hashes laid end to end (`lengths` tokens per row).
    With numba, row by row without the arrays of every shingle and its row."""
    if NUMBA:
        flat_sig = np.full(len(lengths) * num_perm, EMPTY, dtype=np.uint32)
        NUMBA.sketch(flat, lengths, ngram, num_perm, flat_sig)
        return flat_sig.reshape(len(lengths), num_perm)
    return signatures(*combine(flat, lengths, ngram), len(lengths), num_perm)


def _numpy_signatures(rows: np.ndarray, hashes: np.ndarray, n_rows: int, num_perm: int) -> np.ndarray:
    k = np.uint64(num_perm)
    cell = ((hashes >> np.uint64(32)) * k) >> np.uint64(32)  # the bin, then its flat index (in place: fewer passes)
    cell += rows.astype(np.uint64) * k
    values = (hashes >> np.uint64(1)).astype(np.uint32) & np.uint32(0x7FFFFFFF)
    flat = np.full(n_rows * num_perm, EMPTY, dtype=np.uint32)
    np.minimum.at(flat, cell.view(np.int64), values)
    _densify(flat, np.bincount(rows, minlength=n_rows) > 0, num_perm)
    return flat.reshape(n_rows, num_perm)


def _densify(flat: np.ndarray, live: np.ndarray, num_perm: int, max_rounds: int = 4096) -> None:
    """Fill empty bins in place: bin j of a row takes the value of bin probe(j, t) for the first t
    where that bin is filled. The probe sequence is the same for every row, so equal sets stay equal.
    Works on the empty cells only (about a fifth of them at 128 bins and 200 shingles), not whole rows."""
    cells = np.flatnonzero(flat == EMPTY)
    cells = cells[live[cells // num_perm]]  # rows without shingles stay empty
    base, bin_ = cells - cells % num_perm, cells % num_perm
    j = np.arange(num_perm, dtype=np.uint64)
    own = flat.copy()  # probes read the original bins, never one filled in an earlier round
    for t in range(1, max_rounds + 1):
        if cells.size == 0:
            break
        with np.errstate(over="ignore"):
            probe = (mix(j * PRIME + np.uint64(t)) % np.uint64(num_perm)).astype(np.int64)
        values = own[base + probe[bin_]]
        found = values != EMPTY
        flat[cells[found]] = values[found]
        cells, base, bin_ = cells[~found], base[~found], bin_[~found]


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """(bands, rows): the most selective banding that still makes a pair of similarity `threshold`
    a candidate with probability >= `recall` (candidates are then verified)."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            best = (bands, rows)
    return best


def candidate_pairs(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(m, 2) row pairs (a < b) that share at least one band: in each band, rows sorted by band hash
    (then by row) are linked to the next row with the same hash (a chain, not all pairs: components are
    the same)."""
    live = np.flatnonzero(sig[:, 0] != EMPTY)
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:  # numpy releases the GIL
        keys = _band_keys(sig[live] if len(live) < len(sig) else sig, bands, rows, pool)
    return pairs_from_keys(keys, live, len(sig))


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(bands, n) band hashes of these signature rows (streamed curation computes them a block at a time)."""
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        return _band_keys(sig, bands, rows, pool)


def pairs_from_keys(keys: np.ndarray, live: np.ndarray, n_rows: int) -> np.ndarray:
    """Candidate pairs from the band keys of the rows `live` (rows with a signature) among `n_rows`."""
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        edges = list(pool.map(lambda key: _chains(key, live), keys))
    if not edges:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.sort(np.concatenate(edges), axis=1)
    n = np.int64(n_rows)
    flat = np.unique(pairs[:, 0] * n + pairs[:, 1])  # sorted as unique(axis=0) would, far faster
    return np.stack([flat // n, flat % n], axis=1)


def _chains(key: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Links between consecutive rows of equal key. An unstable (SIMD) sort finds the repeated keys,
    then only those few rows are put in (key, row) order: what a stable sort of all rows would give,
    at a fraction of its cost."""
    order = np.argsort(key)
    ordered = key[order]
    same = ordered[1:] == ordered[:-1]
    repeated = np.zeros(len(key), dtype=bool)
    repeated[1:] = same
    repeated[:-1] |= same
    at = order[repeated]
    at = at[np.lexsort((at, key[at]))]
    key, ids = key[at], ids[at]
    same = key[1:] == key[:-1]
    return np.stack([ids[:-1][same], ids[1:][same]], axis=1)


def _band_keys(sig: np.ndarray, bands: int, rows: int, pool: ThreadPoolExecutor, block: int = 1 << 14) -> np.ndarray:
    """(bands, n) 64-bit hashes of each band's signature columns, a block of rows at a time (the block
    stays in cache; a column at a time would stride through the whole matrix once per column)."""
    keys = np.empty((bands, len(sig)), dtype=np.uint64)

    def work(start: int) -> None:
        part = sig[start:start + block, :bands * rows].reshape(-1, bands, rows)
        key = np.zeros(part.shape[:2], dtype=np.uint64)
        with np.errstate(over="ignore"):
            for col in range(rows):
                key *= PRIME
                key += part[:, :, col]
        keys[:, start:start + block] = mix(key, copy=False).T

    list(pool.map(work, range(0, len(sig), block)))
    return keys


def estimated_jaccard(sig: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return (sig[pairs[:, 0]] == sig[pairs[:, 1]]).mean(axis=1)


def exact_jaccard(pairs: np.ndarray, rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Jaccard similarity of the shingle sets of each pair: every shingle of the first row is looked up
    among the (row, shingle) keys of the second, by binary search in one sorted array.

    A key is the row in its top bits and the shingle hash in the rest (at least 40 bits for up to 2^24
    rows): one plain sort of 64-bit integers, several times faster than sorting (row, hash) pairs; two
    different shingles of a pair are taken as one with probability about |A||B| / 2^40 or less."""
    if len(pairs) == 0:
        return np.zeros(0)
    n_rows = int(max(rows.max(initial=-1), pairs.max())) + 1
    shift = np.uint64(64 - max(int(n_rows - 1).bit_length(), 1))
    keys = np.sort((rows.astype(np.uint64) << shift) | (hashes >> (np.uint64(64) - shift)))
    keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]  # each row's set, sorted
    sizes = np.bincount((keys >> shift).astype(np.int64), minlength=n_rows)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    a, b = pairs[:, 0], pairs[:, 1]
    count = sizes[a]
    pair = np.repeat(np.arange(len(pairs)), count)
    at = np.repeat(starts[a] - np.concatenate([[0], np.cumsum(count)[:-1]]), count) + np.arange(count.sum())
    low = (np.uint64(1) << shift) - np.uint64(1)
    probe = (b[pair].astype(np.uint64) << shift) | (keys[at] & low)
    found = keys[np.minimum(np.searchsorted(keys, probe), len(keys) - 1)] == probe
    inter = np.bincount(pair, weights=found, minlength=len(pairs))
    union = sizes[a] + sizes[b] - inter
    return np.divide(inter, union, out=np.zeros(len(pairs)), where=union > 0)


def components(n_rows: int, pairs: np.ndarray) -> np.ndarray:
    """Cluster id per row: the smallest row index of its connected component (singletons: itself)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n_rows, n_rows))
    _, labels = connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if n_rows else 0, n_rows, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(n_rows))
    return first[labels]
