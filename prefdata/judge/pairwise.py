"""Pairwise judging: A vs B, a winner and a score per answer, in both orders by default.

Judgments are stored de-swapped: `a_id` / `b_id` are the pair in candidate order, `order` says
how they were shown (`ab`: a first), and `winner` / `score_a` / `score_b` refer to `a_id` / `b_id`, and so
do `p_a` / `p_b` / `p_tie` and `confidence` (the verdict's probability, from the judge's token
log-probabilities where its backend gives them; `prefdata.judge.confidence`).
"""

from __future__ import annotations

import polars as pl
import xxhash

from prefdata.backends import Backend, ChatRequest
from prefdata.context import Context
from prefdata.judge import confidence
from prefdata.judge import prompts as judge_prompts
from prefdata.judge.asking import ask, error_of, judge_params
from prefdata.judge.parsing import parse_verdict
from prefdata.spec import JudgeSpec

UNSWAP = {"a": "b", "b": "a", "tie": "tie", None: None}


def comparisons(candidates: pl.DataFrame) -> pl.DataFrame:
    """All (a, b) candidate pairs per prompt, a before b in candidate order."""
    ranked = candidates.with_columns(pl.int_range(pl.len()).over("prompt_id").alias("rank"))
    left = ranked.select("prompt_id", "rank", a_id="candidate_id", a_text="response")
    right = ranked.select("prompt_id", "rank", b_id="candidate_id", b_text="response")
    return left.join(right, on="prompt_id", suffix="_b").filter(pl.col("rank") < pl.col("rank_b")).drop(
        "rank", "rank_b")


def orders(a_id: str, b_id: str, swap: bool) -> list[str]:
    if swap:
        return ["ab", "ba"]
    # One order, picked by the pair's hash, so that a judge's position bias does not favour one sampler.
    return ["ab" if xxhash.xxh3_64_intdigest(f"{a_id}{b_id}".encode()) % 2 == 0 else "ba"]


def judge_pairwise(pairs: pl.DataFrame, config: JudgeSpec, name: str, backend: Backend, ctx: Context) -> list[dict]:
    """`pairs`: comparisons with `prompt`. Returns JUDGMENTS rows."""
    params = judge_params(backend, config.max_tokens)
    requests, rows = [], []
    own = judge_prompts.own_tokens(backend)
    for row in pairs.iter_rows(named=True):
        for order in orders(row["a_id"], row["b_id"], config.swap):
            first, second = (row["a_text"], row["b_text"]) if order == "ab" else (row["b_text"], row["a_text"])
            messages = judge_prompts.pairwise(row["prompt"], first, second, config.prompt, own)
            requests.append(ChatRequest.of(messages, params=params, **judge_prompts.shape(
                backend.name, judge_prompts.VERDICT_SCHEMA, judge_prompts.PAIRWISE_PREFILL, config.max_tokens)))
            rows.append({"prompt_id": row["prompt_id"], "a_id": row["a_id"], "b_id": row["b_id"], "order": order})
    read = lambda text: parse_verdict(text, scale=judge_prompts.PAIRWISE_SCALE)  # noqa: E731
    readable = lambda text: read(text).winner is not None  # noqa: E731
    answers = ask(backend, requests, readable, config.retries, ctx, f"judge ({name})")
    for row, asked, request in zip(rows, answers, requests):
        verdict = read(asked.last) if asked.last is not None else None
        swapped = row["order"] == "ba"
        winner = verdict.winner if verdict else None
        scores = (verdict.score_a, verdict.score_b) if verdict else (None, None)
        sure = confidence.pairwise(asked.logprobs, request.prefill, winner) or {}
        shown = (sure.get("p_b"), sure.get("p_a")) if swapped else (sure.get("p_a"), sure.get("p_b"))
        row.update(
            judge=name,
            winner=UNSWAP[winner] if swapped else winner,
            score_a=scores[1] if swapped else scores[0],
            score_b=scores[0] if swapped else scores[1],
            rationale=verdict.rationale if verdict else None,
            raw=asked.raw,
            parse_ok=winner is not None,
            error=error_of(asked, verdict),
            attempts=len(asked.texts),
            confidence=sure.get("confidence"), p_a=shown[0], p_b=shown[1], p_tie=sure.get("p_tie"),
        )
    return rows
