"""Exact duplicates: pairs whose chosen equals rejected, and repeated (prompt, chosen, rejected).

Text is compared after normalisation (NFKC, case, whitespace). Which duplicate survives is a
policy: `first` seen, or `highest_margin`.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from prefdata import schema
from prefdata.io.ids import conversation_key

STAGE = "dedupe"


def _key(column: str) -> pl.Expr:
    return conversation_key(column).str.to_lowercase()


def exact(frame: pl.DataFrame, keep: Literal["first", "highest_margin"] = "first") -> schema.StageResult:
    same = _key("chosen") == _key("rejected")
    identical = frame.filter(same)
    rest = frame.filter(~same).with_row_index("_order")
    if keep == "highest_margin":
        rest = rest.sort(pl.col("margin").fill_null(float("-inf")), "_order", descending=[True, False])
    key = pl.concat_str([_key(c) for c in ("prompt", "chosen", "rejected")], separator="\x1d")
    first = key.is_first_distinct()
    kept = rest.filter(first).sort("_order").drop("_order")
    repeats = rest.filter(~first).sort("_order").drop("_order")
    dropped = pl.concat([
        schema.dropped_rows(identical, STAGE, "identical_chosen_rejected", id_column="pair_id"),
        schema.dropped_rows(repeats, STAGE, "exact_duplicate", id_column="pair_id"),
    ])
    return schema.StageResult(kept, dropped)
