"""A deterministic train/test split grouped by prompt (no prompt in both), optionally stratified.

Groups are ordered by a hash of their key and the seed (xxh3, the ids' hash: the same split on every Polars
version and machine), so the split depends on content, not on row order; within each stratum the first
round(test_size x groups) groups go to test, which keeps the test share exact per stratum. A group's stratum
is its first row's value. The one split rule of the project: `align train`'s held-out prompts use it too.
"""

from __future__ import annotations

import polars as pl

from prefdata import schema
from prefdata.curate.config import SplitConfig
from prefdata.errors import PrefdataError
from prefdata.io.ids import hash_expr

STAGE = "split"


def assign_split(frame: pl.DataFrame, config: SplitConfig | None = None) -> pl.Series:
    """'train' or 'test' for each row."""
    config = config or SplitConfig()
    for column in (config.group, config.stratify):
        if column is not None and column not in frame.columns:
            raise PrefdataError(f"split: no column {column!r} (columns: {', '.join(frame.columns)})")
    stratum = pl.col(config.stratify).first().cast(pl.String) if config.stratify else pl.lit("")
    groups = (frame.group_by(config.group, maintain_order=True).agg(stratum.alias("_stratum"))
              .with_columns(hash_expr(pl.col(config.group).cast(pl.String) + pl.lit(f"\x1f{config.seed}"))
                            .alias("_rank"))
              .with_columns(pl.col("_rank").rank("ordinal").over("_stratum").alias("_pos"),
                            pl.len().over("_stratum").alias("_n"))
              .select(config.group, (pl.col("_pos") <= (pl.col("_n") * config.test_size).round()).alias("_test")))
    joined = frame.select(config.group).join(groups, on=config.group, how="left", maintain_order="left",
                                             nulls_equal=True)
    return joined.select(pl.when("_test").then(pl.lit("test")).otherwise(pl.lit("train")).alias("split"))["split"]


def split(frame: pl.DataFrame, config: SplitConfig | None = None, ctx=None) -> schema.StageResult:
    """The split as a step: every row kept, with a `split` column."""
    return schema.StageResult(frame.with_columns(assign_split(frame, config)), schema.empty(schema.DROPPED))


def train_test(frame: pl.DataFrame, config: SplitConfig | None = None) -> dict[str, pl.DataFrame]:
    marked = frame.with_columns(assign_split(frame, config).alias("_split"))
    return {name: marked.filter(pl.col("_split") == name).drop("_split") for name in ("train", "test")}
