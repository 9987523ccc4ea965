"""The numba kernels give the same bits as the numpy code: token hashes, shingles and signatures."""

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from conftest import HH, ROOT, hh_rows
from prefdata.curate import minhash, shingles

kernels = pytest.importorskip("prefdata.curate._numba_kernels", reason="numba is not installed")

ODD = [
    "", None, "   ", "\t\n\r\x0b\x0c", "a", "Hello, World!", "tab\tseparated\ttext\nand\r\nnewlines",
    "no\u00a0break\u202fspaces\u2009thin\u3000ideographic\u2028line", "日本語のテキストです。漢字とかな",
    "中文文本没有空格",
    "ภาษาไทยไม่มีช่องว่าง", "mixed 日本語 and English words here", "ລາວ ພາສາ", "ཀ་ཁ་ག", "မြန်မာ ខ្មែរ",
    "x" * 100, " ".join(["y" * 100] * 7), "z" * 8 + " " + "w" * 9 + " " + "v" * 16 + " " + "u" * 17,
    "a b c d e f g h i j k l m n o p", "é" * 40 + " ü ß", "emoji 🎉🎉 ok", "  leading and trailing  ",
    "ÀÉÎ UPPER ÇASE", "x" * 5000, "\u3000", "日 本 語",
]


def planted(rows: int = 3000) -> pl.Series:
    """Texts like benchmarks/curate_1m.py's: Zipf words, exact and near copies, re-spaced copies."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from curate_1m import plant, render, vocabulary
    from prefdata.curate.text import pair_text

    rng = np.random.default_rng(1)
    words, table = vocabulary(rng, 3000)
    tokens, truth = plant(rows, rng, table)
    return render(tokens, words, truth, rng).select(pair_text()).to_series()


def both(monkeypatch, run):
    """`run()` on the numpy path, then on the numba path."""
    monkeypatch.setattr(shingles, "NUMBA", None)
    monkeypatch.setattr(minhash, "NUMBA", None)
    slow = run()
    monkeypatch.setattr(shingles, "NUMBA", kernels)
    monkeypatch.setattr(minhash, "NUMBA", kernels)
    return slow, run()


def assert_same(slow, fast):
    for a, b in zip(slow, fast):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def corpora():
    hh = [row[key] for row in hh_rows() for key in ("chosen", "rejected")] if HH.exists() else []
    return {"odd": pl.Series(ODD, dtype=pl.String), "odd_reversed": pl.Series(ODD[::-1], dtype=pl.String),
            "hh": pl.Series(hh, dtype=pl.String), "planted": planted(), "empty": pl.Series([], dtype=pl.String),
            "nulls": pl.Series([None, None], dtype=pl.String)}


@pytest.mark.parametrize("unit", ["words", "chars", "auto"])
def test_same_tokens_shingles_signatures(monkeypatch, unit):
    for name, texts in corpora().items():
        tokens = both(monkeypatch, lambda: shingles.token_hashes(texts, unit))
        assert_same(*tokens)
        for ngram in (1, 3, 5):
            shingled = both(monkeypatch, lambda: shingles.shingle_hashes(texts, ngram, unit))
            assert_same(*shingled)
            rows, hashes = shingled[0]
            for num_perm in (16, 128):
                sig = both(monkeypatch, lambda: minhash.signatures(rows, hashes, texts.len(), num_perm))
                assert_same([sig[0]], [sig[1]])
                flat, lengths = tokens[0]
                fused = both(monkeypatch, lambda: minhash.token_signatures(flat, lengths, ngram, num_perm))
                assert_same([sig[0]], [fused[1]])
                assert_same([sig[0]], [fused[0]])
        assert name != "hh" or len(tokens[0][0]) > 100_000, "the harmless-base texts were not read"


def test_odd_texts_have_tokens():
    """The odd texts are cut as documented, so that agreement is not agreement on nothing."""
    flat, lengths = shingles.token_hashes(pl.Series(["a b", "日本", "", None, "x" * 100, "a\u3000b\tc"]), "auto")
    assert lengths.tolist() == [2, 2, 0, 0, 1, 3] and len(np.unique(flat)) == 6


def test_no_numba_switch():
    """PREFDATA_NO_NUMBA=1 picks the numpy path, in the one place the choice is made."""
    code = "from prefdata.curate import kernels, shingles; print(kernels.PATH, shingles.NUMBA)"
    env = {**os.environ, "PREFDATA_NO_NUMBA": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["numpy", "None"]
