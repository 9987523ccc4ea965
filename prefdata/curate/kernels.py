"""Where shingling and signatures run: numba kernels when numba is installed (`pip install prefdata[fast]`),
else the numpy code. The one place the choice is made; PREFDATA_NO_NUMBA=1 forces numpy. Both give
the same bits (tests/test_shingles_kernel.py)."""

from __future__ import annotations

import os
import sys
import time

import numpy as np


def _load():
    if os.environ.get("PREFDATA_NO_NUMBA", "") not in ("", "0") or sys.byteorder != "little":  # kernels read LE words
        return None
    try:
        from prefdata.curate import _numba_kernels
    except ImportError:
        return None
    return _numba_kernels


NUMBA = _load()
PATH = "numba" if NUMBA else "numpy"


def warm_up() -> float:
    """Compile (or load from numba's cache) every kernel on tiny inputs; returns the seconds it took,
    so that benchmarks report compile time apart from run time."""
    if NUMBA is None:
        return 0.0
    start = time.perf_counter()
    data = np.frombuffer(b"a bc def ghijklmnopqrstuvwxyz" + b" " * 16, dtype=np.uint8)
    offsets = np.array([0, 5, len(data) - 16], dtype=np.int64)
    flat, lengths = np.empty(len(data), dtype=np.uint64), np.empty(2, dtype=np.int64)
    words = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    n = NUMBA.tokens(data, words, offsets, np.array([False, True]), flat, lengths)
    rows, hashes = np.empty(n - 2, dtype=np.int64), np.empty(n - 2, dtype=np.uint64)  # 2 rows of >= 2 tokens
    NUMBA.combine(flat[:n], lengths, 2, n - 2, rows, hashes)
    NUMBA.signatures(rows, hashes, 8, np.full(16, NUMBA.EMPTY, dtype=np.uint32))
    NUMBA.sketch(flat[:n], lengths, 2, 8, np.full(16, NUMBA.EMPTY, dtype=np.uint32))
    return time.perf_counter() - start
