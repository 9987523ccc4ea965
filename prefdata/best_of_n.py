"""Best-of-n (rejection sampling): preference pairs -> one supervised fine-tuning example per prompt.

A prompt's best answer is a chosen answer that no pair of that prompt rejected: with the panel's pairings
(best_vs_worst, best_vs_each, all_pairs) that is the candidate the judges ranked first. Several unbeaten
answers (pairs that never met) are ranked by their judges' mean score, then by how many answers they beat;
a prompt whose every chosen answer also lost somewhere (a cycle) has no best and is dropped as such.
Its margin is the smallest margin by which it beat another answer: `min_margin` asks it to beat every answer
it met by at least that much. The rows in are prompts: prompts = exported + dropped (by reason).

The examples are TRL's conversational SFT form: `messages` = the prompt's turns, then the answer.
"""

from __future__ import annotations

import polars as pl

from prefdata import schema
from prefdata.curate.text import key_hash
from prefdata.errors import PrefdataError
from prefdata.spec import SftSpec

STAGE = "best_of_n"
SFT = {"messages": schema.MESSAGES, "prompt_id": pl.String, "score": pl.Float64, "margin": pl.Float64,
       "wins": pl.UInt32, "source": pl.String}


def _answers(pairs: pl.DataFrame) -> pl.DataFrame:
    """One row per (pair, answer): which answer it is (a normalised text key) and whether it won."""
    keyed = pairs.with_columns(key_hash(pairs, "chosen").alias("_chosen_key"),
                               key_hash(pairs, "rejected").alias("_rejected_key"),
                               pl.int_range(pl.len()).alias("_order"))
    lost = keyed.select("prompt_id", pl.col("_rejected_key").alias("_key")).unique().with_columns(
        pl.lit(True).alias("_lost"))
    won = keyed.rename({"_chosen_key": "_key"}).join(lost, on=["prompt_id", "_key"], how="left")
    return won.with_columns(pl.col("_lost").fill_null(False))


def _ranked(won: pl.DataFrame) -> pl.DataFrame:
    """Per prompt and answer: its score, smallest margin, wins, first row; the prompt's best answer first."""
    per_answer = won.group_by("prompt_id", "_key", maintain_order=True).agg(
        pl.col("_lost").first(), pl.col("chosen_score").mean().alias("score"),
        pl.col("margin").min().alias("margin"), pl.len().cast(pl.UInt32).alias("wins"),
        pl.col("_order").min(), pl.all().exclude("_lost", "chosen_score", "margin", "_order").first())
    unbeaten = per_answer.filter(~pl.col("_lost"))
    best = unbeaten.sort(pl.col("score").fill_null(float("-inf")), "wins", pl.col("_order"),
                         descending=[True, True, False]).group_by("prompt_id", maintain_order=True).first()
    cycles = per_answer.join(best.select("prompt_id"), on="prompt_id", how="anti") \
        .group_by("prompt_id", maintain_order=True).first()
    return pl.concat([best.with_columns(pl.lit(None, pl.String).alias("_why")),
                      cycles.with_columns(pl.lit("no_clear_best").alias("_why"))]).sort("_order")


def _why(config: SftSpec) -> pl.Expr:
    """The reason a prompt's best answer is not exported (null: exported)."""
    reason = pl.when(pl.col("_why").is_not_null()).then(pl.col("_why"))
    if config.min_score is not None:
        reason = reason.when(pl.col("score").is_null()).then(pl.lit("no_score")) \
            .when(pl.col("score") < config.min_score).then(pl.lit("below_min_score"))
    if config.min_margin is not None:
        reason = reason.when(pl.col("margin").is_null()).then(pl.lit("no_score")) \
            .when(pl.col("margin") < config.min_margin).then(pl.lit("below_min_margin"))
    return reason.otherwise(pl.lit(None, pl.String))


def _detail(config: SftSpec) -> pl.Expr:
    return (pl.when(pl.col("_why") == "no_clear_best")
            .then(pl.lit("every chosen answer of this prompt was also rejected in another pair (a cycle)"))
            .when(pl.col("_why") == "no_score").then(pl.lit("not judged: no chosen_score / margin to test"))
            .when(pl.col("_why") == "below_min_score")
            .then(pl.format("score {} < min_score {}", pl.col("score").round(3), pl.lit(config.min_score)))
            .otherwise(pl.format("margin {} < min_margin {}", pl.col("margin").round(3),
                                 pl.lit(config.min_margin))))


def best_of_n(pairs: pl.DataFrame, config: SftSpec | None = None) -> schema.StageResult:
    """The best answer per prompt as `messages` rows (kept), and the prompts left out with their reason."""
    config = config or SftSpec()
    if pairs.height and (config.min_score is not None or config.min_margin is not None) \
            and ("chosen_score" not in pairs.columns or pairs["chosen_score"].is_null().all()):
        raise PrefdataError("these pairs carry no judges' scores (chosen_score): --min-score and --min-margin "
                            "need judged data, such as a `prefdata build` folder")
    for column in ("chosen_score", "margin", "source"):
        if column not in pairs.columns:
            pairs = pairs.with_columns(pl.lit(None, schema.PAIRS[column]).alias(column))
    finite = [pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in ("chosen_score", "margin")]
    pairs = pairs.with_columns(finite)  # a NaN or infinite score is no score (NaN would sort above every number)
    ranked = _ranked(_answers(pairs)).with_columns(_why(config).alias("_why"))
    extra = ["split"] if "split" in pairs.columns else []
    chosen = ranked.filter(pl.col("_why").is_null()).with_columns(
        pl.concat_list("prompt", "chosen").alias("messages"))
    kept = schema.conform(chosen, SFT).select(*SFT, *extra)
    left = ranked.filter(pl.col("_why").is_not_null())
    record = [c for c in pairs.columns if c in left.columns]  # the best pair as it was, not the ranking helpers
    dropped = schema.dropped_rows(left.select(*record, "_why", "score"), STAGE, pl.col("_why"),
                                  id_column="pair_id" if "pair_id" in record else None,
                                  detail=_detail(config), helpers=("_why", "score"))
    return schema.StageResult(kept, dropped)
