"""Pointwise rubric judging: a 1-N score per answer on named aspects (UltraFeedback style).

Scores are kept per candidate (the `scores` table); for the panel they become pairwise judgments
(higher score wins, equal scores tie) with `order` null, since no order was shown.

Where the backend gives token log-probabilities, each score also has `expected_score` (G-Eval: the
probability-weighted score) and `confidence` (the probability of the score given), both averaged over the
aspects (`prefdata.judge.confidence`). A judgment made of two scores has as `confidence` the product of
theirs: the probability, under the judge's own distributions, that both scores come out as given, which
implies its verdict (a lower bound on the verdict's probability); `p_a` / `p_b` / `p_tie` stay null.
"""

from __future__ import annotations

import json

import polars as pl

from prefdata import schema
from prefdata.backends import Backend, ChatRequest
from prefdata.context import Context
from prefdata.judge import confidence
from prefdata.judge import prompts as judge_prompts
from prefdata.judge.asking import ask, error_of, judge_params
from prefdata.judge.parsing import parse_score
from prefdata.spec import JudgeSpec

SCORES = {"prompt_id": pl.String, "judge": pl.String, "candidate_id": pl.String, "score": pl.Float64,
          "aspects": pl.String, "rationale": pl.String, "raw": pl.String, "parse_ok": pl.Boolean,
          "error": pl.String, "attempts": pl.Int64, "confidence": pl.Float64, "expected_score": pl.Float64,
          "truncated": pl.Boolean}  # reward_model judges: the input was cut to max_length (null otherwise)


def score_candidates(candidates: pl.DataFrame, config: JudgeSpec, name: str, backend: Backend,
                     ctx: Context) -> pl.DataFrame:
    """`candidates` with `prompt`: one rubric score per candidate (the SCORES table)."""
    aspects, scale = config.rubric.aspects, config.rubric.scale
    params = judge_params(backend, config.max_tokens)
    shape = judge_prompts.shape(backend.name, judge_prompts.score_schema(aspects),
                                judge_prompts.pointwise_prefill(aspects), config.max_tokens, scale)
    prefill = shape.get("prefill", "")
    own = judge_prompts.own_tokens(backend)
    requests = [ChatRequest.of(judge_prompts.pointwise(p, text, aspects, scale, config.prompt, own), params=params,
                               **shape) for p, text in candidates.select("prompt", "response").iter_rows()]
    read = lambda text: parse_score(text, aspects, scale)  # noqa: E731 - scores outside 1..scale are unreadable
    readable = lambda text: read(text).score is not None  # noqa: E731
    rows = []
    asked_all = ask(backend, requests, readable, config.retries, ctx, f"judge ({name})")
    for (prompt_id, candidate_id), asked in zip(candidates.select("prompt_id", "candidate_id").iter_rows(), asked_all):
        score = read(asked.last) if asked.last is not None else None
        ok = score is not None and score.score is not None
        expected, sure = confidence.pointwise(asked.logprobs, prefill, score.aspects, scale) if ok else (None, None)
        rows.append({"prompt_id": prompt_id, "judge": name, "candidate_id": candidate_id,
                     "score": score.score if ok else None,
                     "aspects": json.dumps(score.aspects) if score else None,
                     "rationale": score.rationale if score else None, "raw": asked.raw, "parse_ok": ok,
                     "error": error_of(asked, score), "attempts": len(asked.texts), "confidence": sure,
                     "expected_score": expected})
    return pl.DataFrame(rows, schema=SCORES) if rows else pl.DataFrame(schema=SCORES)


def as_judgments(pairs: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """Pairwise judgments from pointwise scores: the higher score wins; a missing score gives no verdict."""
    by_id = schema.conform(scores, SCORES).select(  # conform: scores saved before a column existed have it null
        "candidate_id", "judge", "score", "raw", "error", "attempts", "confidence")
    joined = (pairs.select("prompt_id", "a_id", "b_id")
              .join(by_id.rename({"candidate_id": "a_id", "score": "score_a", "raw": "raw_a", "error": "error_a",
                                  "attempts": "attempts_a", "confidence": "confidence_a"}), on="a_id")
              .join(by_id.rename({"candidate_id": "b_id", "score": "score_b", "raw": "raw_b", "error": "error_b",
                                  "attempts": "attempts_b", "judge": "judge_b", "confidence": "confidence_b"}),
                    on="b_id")
              .filter(pl.col("judge") == pl.col("judge_b")))
    diff = pl.col("score_a") - pl.col("score_b")
    return joined.select(
        "prompt_id", "judge", "a_id", "b_id",
        pl.lit(None, dtype=pl.String).alias("order"),
        pl.when(diff > 0).then(pl.lit("a")).when(diff < 0).then(pl.lit("b")).when(diff == 0).then(pl.lit("tie"))
        .alias("winner"),
        "score_a", "score_b",
        pl.lit("pointwise: the higher rubric score wins").alias("rationale"),
        pl.concat_str([pl.lit("A: "), pl.col("raw_a").fill_null(""), pl.lit("\n\nB: "), pl.col("raw_b").fill_null("")])
        .alias("raw"),
        (pl.col("score_a").is_not_null() & pl.col("score_b").is_not_null()).alias("parse_ok"),
        pl.coalesce("error_a", "error_b").alias("error"),
        pl.max_horizontal("attempts_a", "attempts_b").alias("attempts"),
        (pl.col("confidence_a") * pl.col("confidence_b")).alias("confidence"),
    )
