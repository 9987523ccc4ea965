"""The judge stage: every judge of the panel on every pair of distinct candidates of each prompt,
plus the gold (known-answer) items when the spec has them.

Output: the JUDGMENTS table with two extra columns, `attempts` (answers read, re-asks included) and
`gold` (a known-answer comparison, where `a` is the expected winner). Pointwise judges' per-answer
scores and reward models' rewards are returned as the `scores` side table.
"""

from __future__ import annotations

import polars as pl

from prefdata import schema
from prefdata.context import Context
from prefdata.io.ids import normalise
from prefdata.judge import reward
from prefdata.judge.pairwise import comparisons, judge_pairwise
from prefdata.judge.pointwise import SCORES, as_judgments, score_candidates
from prefdata.spec import JudgeSpec, judge_name
from prefdata.stage import Output

STAGE = "judge"
JUDGMENTS = {**schema.JUDGMENTS, "attempts": pl.Int64, "gold": pl.Boolean}


def gold_candidates(gold: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Gold pairs as prompts and candidates of their own (prompt ids prefixed `gold:`), chosen first."""
    prompts = gold.select(pl.concat_str([pl.lit("gold:"), "pair_id"]).alias("prompt_id"), "prompt")
    side = lambda column, tag: gold.select(  # noqa: E731
        pl.concat_str([pl.lit("gold:"), "pair_id"]).alias("prompt_id"),
        pl.concat_str([pl.lit("gold:"), "pair_id", pl.lit(tag)]).alias("candidate_id"),
        pl.col(column).list.last().struct.field("content").alias("response"),
        pl.lit(0 if tag == ":chosen" else 1).alias("_side"))
    candidates = pl.concat([side("chosen", ":chosen"), side("rejected", ":rejected")]).sort(
        "prompt_id", "_side", maintain_order=True).drop("_side")
    return prompts, candidates


def judge(candidates: pl.DataFrame, config: list[JudgeSpec], ctx: Context, *, prompts: pl.DataFrame,
          gold: pl.DataFrame | None = None) -> Output:
    """Input rows: comparisons (pairs of candidates of a prompt). Kept: their judgments (one row per judge
    and order); dropped: comparisons of identical answers, which need no judge."""
    texts = candidates.select("prompt_id", "candidate_id", "response")
    prompt_text = prompts.select("prompt_id", "prompt")
    if gold is not None and gold.height:
        gold_prompts, gold_texts = gold_candidates(gold)
        texts, prompt_text = pl.concat([texts, gold_texts]), pl.concat([prompt_text, gold_prompts])
    pairs = comparisons(texts)
    same = normalise(pl.col("a_text")) == normalise(pl.col("b_text"))
    dropped = schema.dropped_rows(pairs.filter(same), STAGE, "identical_candidates", id_column="a_id")
    pairs = pairs.filter(~same).join(prompt_text, on="prompt_id", how="left")
    with_prompt = texts.join(prompt_text, on="prompt_id", how="left")
    frames, scored = [], []
    for judge_spec in config:
        name = judge_name(judge_spec)
        backend = ctx.backend(judge_spec.backend, reward=judge_spec.kind == "reward_model")
        if judge_spec.kind == "reward_model":
            scores = reward.score_rewards(with_prompt, judge_spec, name, backend, ctx)
            scored.append(scores)
            frames.append(reward.as_judgments(pairs, scores))
        elif judge_spec.kind == "pairwise":
            rows = judge_pairwise(pairs, judge_spec, name, backend, ctx)
            frames.append(pl.DataFrame(rows, schema={k: v for k, v in JUDGMENTS.items() if k != "gold"}))
        else:
            scores = score_candidates(with_prompt, judge_spec, name, backend, ctx)
            scored.append(scores)
            frames.append(as_judgments(pairs, scores))
    judgments = pl.concat([schema.conform(f, {k: v for k, v in JUDGMENTS.items() if k != "gold"}).select(
        [k for k in JUDGMENTS if k != "gold"]) for f in frames]) if frames else pl.DataFrame(schema=JUDGMENTS)
    judgments = judgments.with_columns(pl.col("prompt_id").str.starts_with("gold:").alias("gold"))
    return Output(judgments.select(list(JUDGMENTS)), dropped, {"scores": pl.concat(scored)} if scored else {})


__all__ = ["judge", "JUDGMENTS", "SCORES"]
