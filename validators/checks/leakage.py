"""Train/test prompt leakage: a prompt (normalised, as `prompt_id` hashes it) in more than one split."""

from __future__ import annotations

import polars as pl

from prefdata.validators import rows
from prefdata.validators.inputs import Inputs, example_rows, joined_text
from prefdata.validators.result import CheckResult, skipped


def split_leakage(inp: Inputs) -> CheckResult:
    if inp.test is None and "split" not in inp.frame.columns:
        return skipped("split_leakage", "error", "no test split (--test) and no `split` column")
    leaked = rows.leaked(inp)
    flagged = inp.frame.filter(leaked)
    prompts = flagged["prompt_id"].n_unique()
    where = "the test split" if inp.test is not None else "another split"
    extra = {"split": pl.col("split")} if inp.test is None else {}
    return CheckResult("split_leakage", "error", flagged.height == 0, flagged.height, 0,
                       f"{flagged.height} rows ({prompts} distinct prompts) have a prompt that is also in {where}",
                       figures={"rows": flagged.height, "prompts": prompts},
                       examples=example_rows(inp.frame, leaked, inp.examples, prompt=joined_text("prompt"), **extra))
