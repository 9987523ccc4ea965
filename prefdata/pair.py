"""Pair: judgments -> preference pairs, the winner over the loser of each decided comparison.

A comparison is decided when every readable verdict names the same winner. Otherwise it is dropped
with its reason: `judge_unparsed` (no readable verdict), `position_inconsistent` (verdicts disagree,
e.g. across the two orders), `judge_tie`.
"""

from __future__ import annotations

import polars as pl

from prefdata import schema
from prefdata.io import ids

STAGE = "pair"


def _assistant(text: pl.Expr) -> pl.Expr:
    return pl.concat_list(pl.struct(pl.lit("assistant").alias("role"), text.alias("content")))


def decide(judgments: pl.DataFrame) -> pl.DataFrame:
    """One row per comparison: the decision and how many verdicts agree with it."""
    winners = pl.col("winners")
    grouped = judgments.group_by("prompt_id", "a_id", "b_id", maintain_order=True).agg(
        pl.col("winner").drop_nulls().alias("winners"),
        pl.len().alias("verdicts"),
        pl.col("score_a").mean(),
        pl.col("score_b").mean(),
        pl.col("judge").unique(maintain_order=True).alias("judges"),
    )
    decision = (
        pl.when(winners.list.len() == 0).then(pl.lit("judge_unparsed"))
        .when(winners.list.n_unique() > 1).then(pl.lit("position_inconsistent"))
        .when(winners.list.first() == "tie").then(pl.lit("judge_tie"))
        .otherwise(winners.list.first())
    )
    return grouped.with_columns(decision.alias("decision")).with_columns(
        (winners.list.eval((pl.element() == pl.element().first()).cast(pl.Float64)).list.sum()
         / pl.col("verdicts")).alias("agreement"))


def pair(judgments: pl.DataFrame, config: None = None, ctx: object = None, *, candidates: pl.DataFrame,
         prompts: pl.DataFrame) -> schema.StageResult:
    """Winner over loser for each decided comparison; `candidates` and `prompts` supply the text."""
    decided = decide(judgments)
    undecided = decided.filter(~pl.col("decision").is_in(["a", "b"]))
    dropped = schema.dropped_rows(undecided, STAGE, pl.col("decision"), id_column="a_id")
    a_wins = pl.col("decision") == "a"
    texts = candidates.select("candidate_id", "response")
    pairs = (
        decided.filter(pl.col("decision").is_in(["a", "b"]))
        .join(texts.rename({"candidate_id": "a_id", "response": "a_text"}), on="a_id")
        .join(texts.rename({"candidate_id": "b_id", "response": "b_text"}), on="b_id")
        .join(prompts.select("prompt_id", "prompt", "source"), on="prompt_id")
        .select(
            "prompt_id", "prompt", "source", "agreement", "judges",
            _assistant(pl.when(a_wins).then("a_text").otherwise("b_text")).alias("chosen"),
            _assistant(pl.when(a_wins).then("b_text").otherwise("a_text")).alias("rejected"),
            pl.when(a_wins).then("score_a").otherwise("score_b").alias("chosen_score"),
            pl.when(a_wins).then("score_b").otherwise("score_a").alias("rejected_score"),
        )
    )
    pairs = ids.with_ids(schema.conform(pairs, schema.PAIRS), "pairwise")
    return schema.StageResult(pairs.select(list(schema.PAIRS)), dropped)
