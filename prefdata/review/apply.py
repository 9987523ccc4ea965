"""The curate step `human_review`: a person's decisions (`review.jsonl`) applied to the pairs, as a stage.

`accept` keeps the pair as it is, `swap` exchanges chosen and rejected (and their scores: the margin changes
sign), `drop` removes it with the person's reason on record. Kept pairs get a `review` column (accept, swap or
null). `agreement` and `confidence` still describe the judges' panel, which a swap overruled.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefdata import schema
from prefdata.curate.text import final_text
from prefdata.rates import rate
from prefdata.review import log

STAGE = "human_review"
SWAPPED = {"chosen": "rejected", "rejected": "chosen", "chosen_score": "rejected_score",
           "rejected_score": "chosen_score"}


def human_review(frame: pl.DataFrame, config, ctx=None) -> schema.StageResult:
    return apply(frame, log.current(log.read(Path(config.file))))


def apply(frame: pl.DataFrame, decisions: pl.DataFrame) -> schema.StageResult:
    """Rows in = kept + dropped: every pair is kept (perhaps swapped) or dropped by its decision."""
    standing = decisions.filter(pl.col("decision").is_not_null()).select("pair_id", "decision", "reason")
    joined = frame.drop("review", strict=False).join(standing, on="pair_id", how="left", maintain_order="left")
    drop = (pl.col("decision") == "drop").fill_null(False)
    gone = joined.filter(drop)
    dropped = schema.dropped_rows(gone.drop("decision", "reason"), STAGE, "human_review", id_column="pair_id",
                                  detail=pl.lit("dropped by a person: ") + gone["reason"])
    kept = _swapped(joined.filter(~drop), (pl.col("decision") == "swap").fill_null(False))
    return schema.StageResult(kept.rename({"decision": "review"}).drop("reason"), dropped)


def unswap(frame: pl.DataFrame) -> pl.DataFrame:
    """Pairs as the judges ordered them: rows a person swapped (`review == "swap"`) swapped back."""
    if "review" not in frame.columns:
        return frame
    return _swapped(frame, (pl.col("review") == "swap").fill_null(False))


def _swapped(frame: pl.DataFrame, where: pl.Expr) -> pl.DataFrame:
    columns = [pl.when(where).then(pl.col(other)).otherwise(pl.col(c)).alias(c)
               for c, other in SWAPPED.items() if c in frame.columns]
    if "margin" in frame.columns:
        columns.append(pl.when(where).then(-pl.col("margin")).otherwise(pl.col("margin")).alias("margin"))
    return frame.with_columns(columns)


def summary(pairs: pl.DataFrame, decisions: pl.DataFrame, judgments: pl.DataFrame | None = None,
            candidates: pl.DataFrame | None = None) -> dict:
    """What a person checked among `pairs` (in the judges' orientation), and how often the judges agreed;
    `decisions`: the whole log (`log.read`).

    `panel`: the share of the person's accept/swap decisions that kept the dataset's label (accepts). Per
    judge: the share of its readable verdicts (both orders; a tie counts as a miss) that picked the answer the
    person preferred, on the pairs the person accepted or swapped."""
    standing = log.current(decisions).filter(pl.col("decision").is_not_null())
    here = standing.join(pairs.select("pair_id"), on="pair_id", how="semi")
    count = dict(here.group_by("decision").len().iter_rows())
    accepted, swapped = count.get("accept", 0), count.get("swap", 0)
    out = {"checked": here.height, "accepted": accepted, "swapped": swapped, "dropped": count.get("drop", 0),
           "notes": decisions.filter(pl.col("decision") == "note").height,
           "not_in_data": standing.height - here.height,  # decisions on pairs an earlier stage removed
           "panel": rate(accepted, accepted + swapped).as_dict(), "judges": {}}
    if judgments is not None and candidates is not None and accepted + swapped:
        out["judges"] = _judge_agreement(pairs.join(here, on="pair_id"), judgments, candidates)
    return out


def with_candidate_ids(pairs: pl.DataFrame, candidates: pl.DataFrame) -> pl.DataFrame:
    """`chosen_id` and `rejected_id`: the candidates (same prompt, same answer text) each side came from; null
    where a pair did not come from this build's candidates."""
    ids = candidates.select("prompt_id", "candidate_id", "response").unique(["prompt_id", "response"], keep="first")
    return (pairs.with_columns(final_text("chosen").alias("_c"), final_text("rejected").alias("_r"))
            .join(ids.rename({"response": "_c", "candidate_id": "chosen_id"}), on=["prompt_id", "_c"], how="left",
                  maintain_order="left")
            .join(ids.rename({"response": "_r", "candidate_id": "rejected_id"}), on=["prompt_id", "_r"], how="left",
                  maintain_order="left")
            .drop("_c", "_r"))


def _judge_agreement(decided: pl.DataFrame, judgments: pl.DataFrame, candidates: pl.DataFrame) -> dict:
    sides = (with_candidate_ids(decided.filter(pl.col("decision").is_in(["accept", "swap"])), candidates)
             .drop_nulls(["chosen_id", "rejected_id"])
             .select("prompt_id", pl.when(pl.col("decision") == "accept").then("chosen_id").otherwise("rejected_id")
                     .alias("preferred"), pl.min_horizontal("chosen_id", "rejected_id").alias("lo"),
                     pl.max_horizontal("chosen_id", "rejected_id").alias("hi")))
    votes = judgments.filter(~pl.col("gold").fill_null(False)) if "gold" in judgments.columns else judgments
    picked = (votes.filter(pl.col("winner").is_not_null())
              .with_columns(pl.min_horizontal("a_id", "b_id").alias("lo"),
                            pl.max_horizontal("a_id", "b_id").alias("hi"),
                            pl.when(pl.col("winner") == "a").then("a_id").when(pl.col("winner") == "b").then("b_id")
                            .alias("pick"))
              .join(sides, on=["prompt_id", "lo", "hi"]))
    tally = picked.group_by("judge").agg((pl.col("pick") == pl.col("preferred")).fill_null(False).sum().alias("k"),
                                         pl.len().alias("n")).sort("judge")
    return {judge: rate(k, n).as_dict() for judge, k, n in tally.iter_rows()}
