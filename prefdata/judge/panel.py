"""The panel: each judge's verdicts resolved across orders, then one decision per comparison.

1. `resolve`: a judge's verdicts on one comparison (two orders when swapped) become one verdict. Orders
   that disagree make the comparison position-inconsistent for that judge: a tie, or settled by the
   judge's mean scores when `inconsistent: scores`.
2. `decide`: the judges' verdicts become the panel's decision by majority vote, by mean normalised score,
   or by Bradley-Terry strengths fitted per prompt on every verdict; `agreement` is the share of judges
   (with a verdict) that agree with the decision, null when fewer than two judges gave one.
3. `strengths`: one number per candidate for the pairing policy (Copeland wins-minus-losses, mean
   normalised score, or the Bradley-Terry strength).

With `weight: confidence`, each judge's verdict on a comparison weighs the mean `confidence` of its
readable judgments there (the probability it gave its verdict, from token log-probabilities; 1 when it
has none) in the majority vote, the mean score and the Bradley-Terry wins; `agreement` still counts judges.
`decision_confidence` is a comparison's `confidence` in PAIRS: the mean, over its readable judgments (judges
and orders), of the probability each gave to the panel's decision.
"""

from __future__ import annotations

import numpy as np
import polars as pl

KEYS = ["prompt_id", "a_id", "b_id", "gold"]
POINTS = {"a": 1.0, "b": 0.0, "tie": 0.5}
PROBABILITIES = ("confidence", "p_a", "p_b", "p_tie")


def with_probabilities(judgments: pl.DataFrame) -> pl.DataFrame:
    """Judgments saved before confidence existed have none: null columns."""
    missing = [pl.lit(None, dtype=pl.Float64).alias(c) for c in PROBABILITIES if c not in judgments.columns]
    return judgments.with_columns(missing) if missing else judgments


def resolve(judgments: pl.DataFrame, inconsistent: str = "tie") -> pl.DataFrame:
    """One row per (judge, comparison): `verdict`, `consistent` (null when fewer than two readable
    orders), mean `score_a` / `score_b`, and `confidence` (mean over its readable judgments; null if none)."""
    grouped = with_probabilities(judgments).group_by(["judge", *KEYS], maintain_order=True).agg(
        pl.col("winner").drop_nulls().alias("verdicts"),
        pl.col("score_a").mean(),
        pl.col("score_b").mean(),
        pl.col("confidence").filter(pl.col("winner").is_not_null()).mean(),
    )
    n, distinct = pl.col("verdicts").list.len(), pl.col("verdicts").list.n_unique()
    diff = pl.col("score_a") - pl.col("score_b")
    by_scores = pl.when(diff > 0).then(pl.lit("a")).when(diff < 0).then(pl.lit("b")).otherwise(pl.lit("tie"))
    settle = by_scores if inconsistent == "scores" else pl.lit("tie")
    return grouped.with_columns(
        pl.when(n == 0).then(None).when(distinct == 1).then(pl.col("verdicts").list.first())
        .otherwise(settle).alias("verdict"),
        pl.when(n >= 2).then(distinct == 1).alias("consistent"),
    ).drop("verdicts")


def _normalised(resolved: pl.DataFrame, scales: dict[str, int]) -> pl.DataFrame:
    """Each judge's scores on a 0-1 scale; a verdict without scores counts 1 / 0.5 / 0."""
    scale = pl.col("judge").replace_strict(scales, default=10, return_dtype=pl.Float64)
    points = pl.col("verdict").replace_strict(POINTS, default=None, return_dtype=pl.Float64)
    has_scores = pl.col("score_a").is_not_null() & pl.col("score_b").is_not_null()
    return resolved.with_columns(
        pl.when(has_scores).then(pl.col("score_a") / scale).otherwise(points).alias("norm_a"),
        pl.when(has_scores).then(pl.col("score_b") / scale).otherwise(1 - points).alias("norm_b"),
        (pl.col("score_a") / scale * 10).alias("score10_a"),
        (pl.col("score_b") / scale * 10).alias("score10_b"),
    )


def bradley_terry(wins: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Strengths (summing to 1) from a k x k matrix of wins (ties count half to each side), by Hunter's
    MM algorithm, with a tiny prior win for each pair so that unbeaten candidates stay finite."""
    k = wins.shape[0]
    wins = wins + 0.01 * (1 - np.eye(k))
    games = wins + wins.T
    strength = np.full(k, 1.0 / k)
    for _ in range(iterations):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = wins.sum(axis=1) / denominator
        updated /= updated.sum()
        if np.allclose(updated, strength, atol=1e-10):
            break
        strength = updated
    return strength


def _bt_strengths(resolved: pl.DataFrame) -> pl.DataFrame:
    rows = []
    votes = resolved.filter(pl.col("verdict").is_not_null())
    for (prompt_id,), group in votes.group_by("prompt_id", maintain_order=True):
        ids = sorted(set(group["a_id"]) | set(group["b_id"]))
        index = {c: i for i, c in enumerate(ids)}
        wins = np.zeros((len(ids), len(ids)))
        for a, b, verdict, weight in group.select("a_id", "b_id", "verdict", "weight").iter_rows():
            wins[index[a], index[b]] += POINTS[verdict] * weight
            wins[index[b], index[a]] += (1 - POINTS[verdict]) * weight
        rows += [{"prompt_id": prompt_id, "candidate_id": c, "strength": float(s)}
                 for c, s in zip(ids, bradley_terry(wins))]
    return pl.DataFrame(rows, schema={"prompt_id": pl.String, "candidate_id": pl.String, "strength": pl.Float64})


def _weighted_mean(column: str) -> pl.Expr:
    present = pl.col(column).is_not_null()
    total = pl.col("weight").filter(present).sum()
    return pl.when(total > 0).then((pl.col(column) * pl.col("weight")).filter(present).sum() / total).alias(column)


def decide(resolved: pl.DataFrame, method: str, scales: dict[str, int],
           weight: str = "equal") -> tuple[pl.DataFrame, pl.DataFrame]:
    """(comparisons with `decision`, `agreement`, `judges`, `verdicts`, `score10_a/b`; candidate strengths).
    `weight`: equal (one judge, one vote) or confidence (each verdict weighs its judge's confidence)."""
    normed = _normalised(resolved, scales).with_columns(
        (pl.col("confidence").fill_null(1.0).fill_nan(1.0) if weight == "confidence" else pl.lit(1.0)).alias("weight"))
    votes = pl.col("verdict").drop_nulls()
    voted = lambda label: pl.col("weight").filter(pl.col("verdict") == label).sum().alias(f"w_{label}")  # noqa: E731
    grouped = normed.group_by(KEYS, maintain_order=True).agg(
        votes.alias("verdicts"),
        pl.col("judge").filter(pl.col("verdict").is_not_null()).alias("judges"),
        # null (not swapped) is not inconsistent: a panel of unswapped judges is never "all inconsistent"
        (~pl.col("consistent")).fill_null(False).all().alias("all_inconsistent"),
        _weighted_mean("norm_a"), _weighted_mean("norm_b"),
        pl.col("score10_a").mean(), pl.col("score10_b").mean(),
        voted("a"), voted("b"), voted("tie"),
    )
    count = lambda label: pl.col("verdicts").list.eval((pl.element() == label).cast(pl.Int32)).list.sum()  # noqa: E731
    grouped = grouped.with_columns(count("a").alias("n_a"), count("b").alias("n_b"), count("tie").alias("n_tie"))
    if method == "majority":
        decision = (pl.when(pl.col("verdicts").list.len() == 0).then(None)
                    .when((pl.col("w_a") > pl.col("w_b")) & (pl.col("w_a") > pl.col("w_tie"))).then(pl.lit("a"))
                    .when((pl.col("w_b") > pl.col("w_a")) & (pl.col("w_b") > pl.col("w_tie"))).then(pl.lit("b"))
                    .otherwise(pl.lit("tie")))
        grouped = grouped.with_columns(decision.alias("decision"))
        strengths = _copeland(grouped)
    elif method == "mean_score":
        diff = pl.col("norm_a") - pl.col("norm_b")
        decision = (pl.when(pl.col("verdicts").list.len() == 0).then(None).when(diff > 1e-9).then(pl.lit("a"))
                    .when(diff < -1e-9).then(pl.lit("b")).otherwise(pl.lit("tie")))
        grouped = grouped.with_columns(decision.alias("decision"))
        strengths = pl.concat([
            grouped.select("prompt_id", pl.col("a_id").alias("candidate_id"), pl.col("norm_a").alias("s")),
            grouped.select("prompt_id", pl.col("b_id").alias("candidate_id"), pl.col("norm_b").alias("s")),
        ]).group_by("prompt_id", "candidate_id", maintain_order=True).agg(pl.col("s").mean().alias("strength"))
    elif method == "bradley_terry":
        strengths = _bt_strengths(normed)
        lookup = strengths.select("candidate_id", "strength")
        grouped = (grouped.join(lookup.rename({"candidate_id": "a_id", "strength": "s_a"}), on="a_id", how="left")
                   .join(lookup.rename({"candidate_id": "b_id", "strength": "s_b"}), on="b_id", how="left"))
        diff = pl.col("s_a") - pl.col("s_b")
        decision = (pl.when(pl.col("verdicts").list.len() == 0).then(None).when(diff > 1e-9).then(pl.lit("a"))
                    .when(diff < -1e-9).then(pl.lit("b")).otherwise(pl.lit("tie")))
        grouped = grouped.with_columns(decision.alias("decision")).drop("s_a", "s_b")
    else:
        raise ValueError(f"unknown panel method {method!r}")
    agreeing = (pl.when(pl.col("decision") == "a").then(pl.col("n_a")).when(pl.col("decision") == "b")
                .then(pl.col("n_b")).otherwise(pl.col("n_tie")))
    voters = pl.col("verdicts").list.len()
    # One verdict cannot agree or disagree with anything: agreement needs two judges, else it is null.
    grouped = grouped.with_columns(pl.when(voters >= 2).then(agreeing / voters).alias("agreement"))
    return grouped, strengths


def _copeland(decided: pl.DataFrame) -> pl.DataFrame:
    a_points = pl.when(pl.col("decision") == "a").then(1).when(pl.col("decision") == "b").then(-1).otherwise(0)
    return pl.concat([
        decided.select("prompt_id", pl.col("a_id").alias("candidate_id"), a_points.alias("s")),
        decided.select("prompt_id", pl.col("b_id").alias("candidate_id"), (-a_points).alias("s")),
    ]).group_by("prompt_id", "candidate_id", maintain_order=True).agg(pl.col("s").sum().cast(pl.Float64)
                                                                      .alias("strength"))


def decision_confidence(judgments: pl.DataFrame, decided: pl.DataFrame) -> pl.DataFrame:
    """Per comparison (KEYS), `confidence`: the mean over its readable judgments of the probability each gave to
    the panel's decision: `p_a` / `p_b` / `p_tie` where the judgment has them, else (pointwise: one probability,
    of its own verdict) its `confidence` when its verdict is the decision and 1 - `confidence` when not."""
    joined = with_probabilities(judgments).filter(pl.col("winner").is_not_null()).join(
        decided.select(*KEYS, "decision"), on=KEYS)
    spread = (pl.when(pl.col("decision") == "a").then("p_a").when(pl.col("decision") == "b").then("p_b")
              .when(pl.col("decision") == "tie").then("p_tie"))
    own = pl.when(pl.col("winner") == pl.col("decision")).then("confidence").otherwise(1 - pl.col("confidence"))
    given = pl.coalesce(spread, own).fill_nan(None)
    return joined.group_by(KEYS).agg(given.mean().alias("confidence"))
