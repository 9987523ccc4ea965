"""Train/test prompt leakage: a prompt (normalised, as `prompt_id` hashes it) in more than one split."""

from __future__ import annotations

import polars as pl

from validators.inputs import Inputs, joined_text, preview
from validators.result import CheckResult, skipped


def split_leakage(inp: Inputs) -> CheckResult:
    if inp.test is not None:
        both = pl.concat([
            inp.frame.select("prompt_id", joined_text("prompt").alias("text"), pl.lit("data").alias("split")),
            inp.test.select("prompt_id", joined_text("prompt").alias("text"), pl.lit("test").alias("split")),
        ])
    elif "split" in inp.frame.columns:
        both = inp.frame.select("prompt_id", joined_text("prompt").alias("text"), pl.col("split").cast(pl.String))
    else:
        return skipped("split_leakage", "error", "no test split (--test) and no `split` column")
    shared = (both.group_by("prompt_id", maintain_order=True)
              .agg(pl.col("split").unique().sort().alias("splits"), pl.col("text").first())
              .filter(pl.col("splits").list.len() > 1))
    examples = [{"prompt_id": r["prompt_id"], "splits": r["splits"], "prompt": preview(r["text"])}
                for r in shared.head(inp.examples).iter_rows(named=True)]
    splits = both["split"].unique().sort().to_list()
    return CheckResult("split_leakage", "error", shared.height == 0, shared.height, 0,
                       f"{shared.height} prompts appear in more than one of the splits {splits}",
                       figures={"splits": splits}, examples=examples)
