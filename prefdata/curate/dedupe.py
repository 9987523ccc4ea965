"""Exact duplicates: pairs whose chosen equals rejected, and repeated pairs or prompts.

Text is compared after normalisation (NFKC, case, whitespace), through 64-bit hashes of each
normalised conversation (three per pair, so a false match needs three collisions at once).
Which duplicate survives is a policy: `first` seen, or `highest_margin`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import polars as pl

from prefdata import schema
from prefdata.curate.config import DedupeConfig
from prefdata.curate.text import key_hash, pair_id_column
from prefdata.io.ids import conversation_key

STAGE = "dedupe"


def _key(column: str) -> pl.Expr:
    """The normalised text key of a conversation column (also used by validators)."""
    return conversation_key(column).str.to_lowercase()


def _key_hashes(frame: pl.DataFrame, columns: tuple[str, ...], rows: int = 1 << 17) -> dict[str, pl.Series]:
    """key_hash of each column, in slices of rows on threads: eager string operations on one Series run
    on one core (Polars releases the GIL), and a slice's copies of its texts stay small."""
    jobs = [(column, start) for column in columns for start in range(0, max(frame.height, 1), rows)]
    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        parts = list(pool.map(lambda job: key_hash(frame.slice(job[1], rows), job[0]), jobs))
    return {column: pl.concat([part for (name, _), part in zip(jobs, parts) if name == column])
            for column in columns}


def exact(frame: pl.DataFrame, config: DedupeConfig | None = None, ctx=None, *,
          keep: Literal["first", "highest_margin"] | None = None) -> schema.StageResult:
    config = config or DedupeConfig()
    keep = keep or config.keep
    columns = ("prompt",) if config.level == "prompt" else ("prompt", "chosen", "rejected")
    keys = pl.DataFrame(_key_hashes(frame, ("prompt", "chosen", "rejected")))
    same = (keys["chosen"] == keys["rejected"]) if config.identical else pl.repeat(False, frame.height, eager=True)
    marked = frame.with_columns(pl.struct(keys.select(columns)).alias("_key"), same.alias("_same")).with_row_index(
        "_order")
    identical = marked.filter("_same")
    rest = marked.filter(~pl.col("_same"))
    if keep == "highest_margin":
        rest = rest.sort(pl.col("margin").fill_nan(None).fill_null(float("-inf")), "_order", descending=[True, False])
    first = pl.col("_key").is_first_distinct()
    helpers = ["_order", "_key", "_same"]
    kept = rest.filter(first).sort("_order").drop(helpers)
    repeats = rest.filter(~first).sort("_order").drop(helpers)
    reason = "duplicate_prompt" if config.level == "prompt" else "exact_duplicate"
    dropped = pl.concat([
        schema.dropped_rows(identical.drop(helpers), STAGE, "identical_chosen_rejected",
                            id_column=pair_id_column(frame)),
        schema.dropped_rows(repeats, STAGE, reason, id_column=pair_id_column(frame)),
    ])
    return schema.StageResult(kept, dropped)
