"""Reward-model judging: a sequence-classification model scores every (prompt, answer) once.

The raw rewards go to the `scores` table (`score`, with `truncated`). For the panel they become pairwise
judgments like pointwise scores (`order` null, the higher reward wins, equal rewards tie), with
`score_a` / `score_b` on the 1-10 scale the panel averages: 1 + 9 * sigmoid(z), z the reward standardised
over this judge's rewards in the build. A reward's scale means nothing across models (one model's rewards
span +-2, another's +-20), so standardising lets `mean_score` weigh a reward model like any 1-10 judge;
the mapping keeps each judge's order, so its verdicts (and Bradley-Terry, which uses verdicts) are the
raw rewards'.
"""

from __future__ import annotations

import math

import polars as pl

from prefdata.backends import Backend, ChatRequest, SamplingParams, run_requests
from prefdata.context import Context
from prefdata.judge.pointwise import SCORES
from prefdata.spec import JudgeSpec

MAX_REWARD_TEXT = 64  # a float's repr is at most 24 characters; anything longer is not a reward


def requests_for(candidates: pl.DataFrame, max_length: int) -> list[ChatRequest]:
    """One request per candidate: the prompt's turns, then the answer as the assistant's turn."""
    params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_length)  # max_tokens: longest input
    return [ChatRequest.of([*prompt, {"role": "assistant", "content": text}], params=params)
            for prompt, text in candidates.select("prompt", "response").iter_rows()]


def read_reward(text: str | None) -> float | None:
    """The reward a backend wrote, or None when it is not a finite number (model output is hostile input)."""
    if text is None or len(text) > MAX_REWARD_TEXT:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def score_rewards(candidates: pl.DataFrame, config: JudgeSpec, name: str, backend: Backend,
                  ctx: Context) -> pl.DataFrame:
    """`candidates` with `prompt`: one reward per candidate (the SCORES table, `truncated` set)."""
    requests = requests_for(candidates, config.max_length)
    with ctx.progress(f"judge ({name})", len(requests)) as advance:
        answers = run_requests(backend, requests, ctx.cache, read_cache=ctx.read_cache, on_progress=advance)
    rows = []
    ids = candidates.select("prompt_id", "candidate_id").iter_rows()
    for (prompt_id, candidate_id), answer in zip(ids, answers):
        reward = read_reward(answer.text)
        error = answer.error or (None if reward is not None else
                                 f"unreadable_reward: {str(answer.text)[:80]!r} is not a finite number")
        cut = answer.finish_reason == "length"
        rows.append({"prompt_id": prompt_id, "judge": name, "candidate_id": candidate_id, "score": reward,
                     "aspects": None, "raw": answer.text, "parse_ok": reward is not None, "error": error,
                     "attempts": 1, "truncated": cut if answer.error is None else None,
                     "rationale": f"reward model: input cut to its last {answer.tokens_in} tokens" if cut else
                     "reward model"})
    return pl.DataFrame(rows, schema=SCORES) if rows else pl.DataFrame(schema=SCORES)


def normalised(scores: pl.DataFrame) -> pl.Expr:
    """1 + 9 * sigmoid(z): the reward standardised over its judge's rewards, on the panel's 1-10 scale."""
    std = pl.col("score").std(ddof=0).over("judge")
    z = pl.when(std > 0).then((pl.col("score") - pl.col("score").mean().over("judge")) / std).otherwise(0.0)
    return pl.when(pl.col("score").is_not_null()).then(1 + 9 / (1 + (-z).exp()))  # no reward: no score


def as_judgments(pairs: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """Pairwise judgments from rewards: the higher raw reward wins; `score_a` / `score_b` normalised;
    `confidence` is the Bradley-Terry probability of the verdict, sigmoid(|reward_a - reward_b|), the
    probability a reward model's training loss gives the better answer (0.5 for a tie)."""
    from prefdata.judge.pointwise import as_judgments as from_scores

    judged = from_scores(pairs, scores)  # winner, raw ("A: reward\n\nB: reward"), errors: from raw rewards
    scaled = scores.select("candidate_id", "judge", normalised(scores).alias("norm"), pl.col("score").alias("raw"))
    gap = (pl.col("reward_a") - pl.col("reward_b")).abs()
    return (judged.join(scaled.rename({"candidate_id": "a_id", "norm": "norm_a", "raw": "reward_a"}),
                        on=["a_id", "judge"], how="left")
            .join(scaled.rename({"candidate_id": "b_id", "norm": "norm_b", "raw": "reward_b"}),
                  on=["b_id", "judge"], how="left")
            .with_columns(pl.col("norm_a").alias("score_a"), pl.col("norm_b").alias("score_b"),
                          (1 / (1 + (-gap).exp())).alias("confidence"),
                          pl.lit("reward model: the higher reward wins; scores are 1 + 9 * sigmoid(standardised "
                                 "reward)").alias("rationale"))
            .select(judged.columns))


def truncation(scores: pl.DataFrame) -> dict[str, dict]:
    """Per reward judge: the share of inputs cut to max_length (a `prefdata.rates` figure)."""
    from prefdata.rates import rate

    if "truncated" not in scores.columns:
        return {}
    counted = scores.filter(pl.col("truncated").is_not_null()).group_by("judge", maintain_order=True).agg(
        pl.col("truncated").sum().alias("k"), pl.len().alias("n"))
    return {judge: rate(int(k), int(n)).as_dict() for judge, k, n in counted.iter_rows()}
