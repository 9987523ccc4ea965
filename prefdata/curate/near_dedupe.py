"""Near-duplicate removal with MinHash LSH, on prompts or on whole pairs."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Literal

import numpy as np
import polars as pl

from prefdata import schema
from prefdata.curate import minhash
from prefdata.curate.config import NearDedupeConfig
from prefdata.curate.shingles import Unit, shingle_hashes, token_hashes
from prefdata.curate.text import all_text, pair_id_column, pair_text

STAGE = "near_dedupe"
CHUNK = 1 << 13
PAIR_CHUNK = 1 << 11


def near_duplicate_clusters(
    texts: pl.Series,
    *,
    ngram: int = 5,
    unit: Unit = "words",
    threshold: float = 0.8,
    num_perm: int = 128,
    bands: int | None = None,
    rows: int | None = None,
    verify: Literal["exact", "signature", "none"] = "exact",
) -> pl.Series:
    """A cluster id per row: rows in one cluster are near duplicates (linked by Jaccard similarity of
    their n-gram shingles >= `threshold`, transitively); a row with no near duplicate is its own cluster.
    The id is the smallest row index in the cluster. Share of near-duplicate rows:
    `1 - clusters.n_unique() / len(texts)`."""
    return _clusters(texts.len(), texts.slice, texts.gather, ngram=ngram, unit=unit, threshold=threshold,
                     num_perm=num_perm, bands=bands, rows=rows, verify=verify)


def _clusters(n: int, chunk: Callable[[int, int], pl.Series], pick: Callable[[np.ndarray], pl.Series], *,
              ngram: int, unit: Unit, threshold: float, num_perm: int, bands: int | None, rows: int | None,
              verify: str) -> pl.Series:
    """`chunk(start, length)` and `pick(rows)` give texts on demand, so that a table's texts are never
    all built at once (a million 1.5 KB pairs would be 1.5 GB more)."""
    if n == 0:
        return pl.Series("cluster", [], dtype=pl.Int64)
    if bands is None or rows is None:
        bands, rows = minhash.lsh_params(threshold, num_perm)
    sig = _signatures(n, chunk, ngram, unit, num_perm)
    pairs = minhash.candidate_pairs(sig, bands, rows)
    if verify == "signature" and len(pairs):
        pairs = pairs[minhash.estimated_jaccard(sig, pairs) >= threshold]
    elif verify == "exact" and len(pairs):
        pairs = pairs[_exact(pick, pairs, ngram, unit) >= threshold]
    return pl.Series("cluster", minhash.components(n, pairs))


def _signatures(n: int, chunk: Callable[[int, int], pl.Series], ngram: int, unit: Unit, num_perm: int) -> np.ndarray:
    """Signatures chunk by chunk: small chunks bound memory (and reuse it, which matters where fresh
    pages are slow to fault in); Polars and numpy release the GIL, so threads share the cores."""
    sig = np.empty((n, num_perm), dtype=np.uint32)

    def work(start: int) -> None:
        texts = chunk(start, CHUNK)
        sig[start:start + texts.len()] = minhash.token_signatures(*token_hashes(texts, unit), ngram, num_perm)

    starts = range(0, n, CHUNK)
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1, 8)) as pool:
        list(pool.map(work, starts))
    return sig


def _exact(pick: Callable[[np.ndarray], pl.Series], pairs: np.ndarray, ngram: int, unit: Unit) -> np.ndarray:
    """Exact Jaccard of candidate pairs, shingling again only the rows that are candidates, a few
    thousand pairs at a time (small arrays stay in cache; fresh pages are slow to fault in)."""
    def work(start: int) -> np.ndarray:
        chunk = pairs[start:start + PAIR_CHUNK]
        involved, local = np.unique(chunk, return_inverse=True)
        row_ids, hashes = shingle_hashes(pick(involved), ngram, unit)
        return minhash.exact_jaccard(local.reshape(chunk.shape), row_ids, hashes)

    starts = range(0, len(pairs), PAIR_CHUNK)
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1, 8)) as pool:
        return np.concatenate(list(pool.map(work, starts)))


def near_dedupe(frame: pl.DataFrame, config: NearDedupeConfig | None = None, ctx=None) -> schema.StageResult:
    """Keep one row per near-duplicate cluster (the first, or the one with the highest margin)."""
    config = config or NearDedupeConfig()
    text = all_text("prompt") if config.scope == "prompt" else pair_text()
    used = text.meta.root_names()  # candidates' rows are gathered from these columns only
    clusters = _clusters(
        frame.height, lambda start, length: frame.slice(start, length).select(text).to_series(),
        lambda rows: frame.select(pl.col(used).gather(rows)).select(text).to_series(), ngram=config.ngram,
        unit=config.unit, threshold=config.threshold, num_perm=config.num_perm, bands=config.bands, rows=config.rows,
        verify=config.verify)
    marked = frame.with_columns(clusters.alias("_cluster")).with_row_index("_order")
    if config.keep == "highest_margin":
        margin = pl.col("margin").fill_nan(None).fill_null(float("-inf"))
        marked = marked.sort(margin, "_order", descending=[True, False])
    ids = pl.col("pair_id") if "pair_id" in frame.columns else pl.col("_order").cast(pl.String)
    survivor = marked.select("_cluster", ids.alias("_kept_id")).unique("_cluster", keep="first")
    first = pl.col("_cluster").is_first_distinct()
    kept = marked.filter(first).sort("_order").drop("_order", "_cluster")
    repeats = marked.filter(~first).sort("_order").join(survivor, on="_cluster", how="left", maintain_order="left")
    dropped = schema.dropped_rows(
        repeats.drop("_order", "_cluster", "_kept_id"), STAGE, "near_duplicate", id_column=pair_id_column(frame),
        detail=pl.lit(f"{config.scope} near-duplicate of pair ") + pl.lit(repeats["_kept_id"].fill_null("?")))
    return schema.StageResult(kept, dropped)
