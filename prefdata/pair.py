"""Pair: judgments -> preference pairs, by the panel's decisions and the pairing policy.

Input rows are the judged comparisons (gold items excluded). A comparison the panel could not decide
is dropped with its reason: `judge_request_failed` (no judge got an answer back: a transport failure, which a
re-run of the build retries), `judge_unparsed` (answers came back, none readable), `position_inconsistent` (every
judge's two orders disagreed), `panel_tie`. Decided comparisons become pairs as the policy says:
`all_pairs`, `best_vs_each` (the strongest candidate over each one it beat) or `best_vs_worst` (one
pair per prompt); the rest are dropped as `not_selected`. Ties are never paired. `chosen_score` and
`rejected_score` are the judges' mean scores on a 1-10 scale; `agreement` is the share of judges that
agree with the panel, null when fewer than two judges gave a verdict on the pair; `confidence` is the mean
probability the judgments gave to the panel's decision (`panel.decision_confidence`; null without token
log-probabilities).
"""

from __future__ import annotations

import polars as pl

from prefdata import schema
from prefdata.context import Context
from prefdata.io import ids
from prefdata.judge.panel import KEYS, decide, decision_confidence, resolve
from prefdata.spec import PanelSpec

STAGE = "pair"


def _assistant(text: pl.Expr) -> pl.Expr:
    return pl.concat_list(pl.struct(pl.lit("assistant").alias("role"), text.alias("content")))


def _undecided_reason() -> pl.Expr:
    return (pl.when(pl.col("decision").is_null() & pl.col("request_failed")).then(pl.lit("judge_request_failed"))
            .when(pl.col("decision").is_null()).then(pl.lit("judge_unparsed"))
            .when(pl.col("all_inconsistent")).then(pl.lit("position_inconsistent"))
            .otherwise(pl.lit("panel_tie")))


def _request_failures(votes: pl.DataFrame) -> pl.DataFrame:
    """Per comparison: whether no judgment got an answer back (`raw` null), and the first such error."""
    return votes.group_by(KEYS).agg(pl.col("raw").is_null().all().alias("request_failed"),
                                    pl.col("error").drop_nulls().first().alias("first_error"))


def _oriented(decided: pl.DataFrame) -> pl.DataFrame:
    a_wins = pl.col("decision") == "a"
    return decided.with_columns(
        pl.when(a_wins).then("a_id").otherwise("b_id").alias("chosen_id"),
        pl.when(a_wins).then("b_id").otherwise("a_id").alias("rejected_id"),
        pl.when(a_wins).then("score10_a").otherwise("score10_b").alias("chosen_score"),
        pl.when(a_wins).then("score10_b").otherwise("score10_a").alias("rejected_score"),
    )


def _select(policy: str) -> pl.Expr:
    """A boolean mask over `oriented` (joined with best/worst per prompt) for the pairing policy."""
    if policy == "all_pairs":
        return pl.lit(True)
    if policy == "best_vs_each":
        return pl.col("chosen_id") == pl.col("best_id")
    return (pl.col("chosen_id") == pl.col("best_id")) & (pl.col("rejected_id") == pl.col("worst_id"))


def _best_and_worst(strengths: pl.DataFrame) -> pl.DataFrame:
    ranked = strengths.with_row_index("_order")
    return ranked.group_by("prompt_id").agg(
        pl.col("candidate_id").sort_by(["strength", "_order"], descending=[True, False]).first().alias("best_id"),
        pl.col("candidate_id").sort_by(["strength", "_order"], descending=[False, True]).first().alias("worst_id"),
    )


def pair(judgments: pl.DataFrame, config: PanelSpec, ctx: Context | None = None, *, candidates: pl.DataFrame,
         prompts: pl.DataFrame, scales: dict[str, int] | None = None,
         judges: list[str] | None = None) -> schema.StageResult:
    """Decide each comparison with the panel (`judges`: the judges allowed to vote; all when None)."""
    votes = judgments.filter(~pl.col("gold"))
    if judges is not None:
        votes = votes.filter(pl.col("judge").is_in(judges))
    decided, strengths = decide(resolve(votes, config.inconsistent), config.method, scales or {}, config.weight)
    decided = decided.join(decision_confidence(votes, decided), on=KEYS, how="left")
    undecided = decided.filter(~pl.col("decision").is_in(["a", "b"]) | pl.col("decision").is_null()).join(
        _request_failures(votes), on=KEYS, how="left")
    oriented = _oriented(decided.filter(pl.col("decision").is_in(["a", "b"])))
    oriented = oriented.join(_best_and_worst(strengths), on="prompt_id", how="left")
    chosen_mask = _select(config.pairing)
    dropped = pl.concat([
        schema.dropped_rows(undecided.drop("verdicts"), STAGE, _undecided_reason(), id_column="a_id",
                            detail=pl.when("request_failed").then("first_error"),
                            helpers=("request_failed", "first_error")),
        schema.dropped_rows(oriented.filter(~chosen_mask).drop("verdicts"), STAGE, "not_selected",
                            id_column="chosen_id", detail=pl.lit(f"pairing policy {config.pairing}")),
    ])
    texts = candidates.select("candidate_id", "response")
    pairs = (
        oriented.filter(chosen_mask)
        .join(texts.rename({"candidate_id": "chosen_id", "response": "chosen_text"}), on="chosen_id")
        .join(texts.rename({"candidate_id": "rejected_id", "response": "rejected_text"}), on="rejected_id")
        .join(prompts.select("prompt_id", "prompt", "source"), on="prompt_id")
        .select("prompt_id", "prompt", "source", "agreement", "judges", "chosen_score", "rejected_score", "confidence",
                _assistant(pl.col("chosen_text")).alias("chosen"),
                _assistant(pl.col("rejected_text")).alias("rejected"))
    )
    pairs = ids.with_ids(schema.conform(pairs, schema.PAIRS), "pairwise")
    return schema.StageResult(pairs.select(list(schema.PAIRS)), dropped)
