"""Judge: candidates -> judgments. Every pair of distinct candidates of a prompt is compared.

Judgments are stored de-swapped: `a_id` / `b_id` are the pair in candidate order, `order` says
how they were shown (`ab`: a first), and `winner` / `score_a` / `score_b` refer to `a_id` / `b_id`.
"""

from __future__ import annotations

import polars as pl
import xxhash

from prefdata import schema
from prefdata.backends import ChatRequest, SamplingParams, run_requests
from prefdata.context import Context
from prefdata.io.ids import normalise
from prefdata.judge import prompts as judge_prompts
from prefdata.judge.parsing import parse_verdict
from prefdata.spec import JudgeSpec

STAGE = "judge"
UNSWAP = {"a": "b", "b": "a", "tie": "tie", None: None}


def comparisons(candidates: pl.DataFrame) -> pl.DataFrame:
    """All (a, b) candidate pairs per prompt, a before b in candidate order."""
    ranked = candidates.with_columns(pl.int_range(pl.len()).over("prompt_id").alias("rank"))
    left = ranked.select("prompt_id", "rank", a_id="candidate_id", a_text="response")
    right = ranked.select("prompt_id", "rank", b_id="candidate_id", b_text="response")
    return left.join(right, on="prompt_id", suffix="_b").filter(pl.col("rank") < pl.col("rank_b")).drop(
        "rank", "rank_b")


def _orders(a_id: str, b_id: str, swap: bool) -> list[str]:
    if swap:
        return ["ab", "ba"]
    # One order, picked by the pair's hash, so that a judge's position bias does not favour one sampler.
    return ["ab" if xxhash.xxh3_64_intdigest(f"{a_id}{b_id}".encode()) % 2 == 0 else "ba"]


def judge(candidates: pl.DataFrame, config: JudgeSpec, ctx: Context, *, prompts: pl.DataFrame) -> schema.StageResult:
    """Compare every pair of distinct candidates of each prompt; `prompts` supplies the prompt text."""
    backend = ctx.backend(config.backend)
    pairs = comparisons(candidates)
    same = normalise(pl.col("a_text")) == normalise(pl.col("b_text"))
    dropped = schema.dropped_rows(pairs.filter(same), STAGE, "identical_candidates", id_column="a_id")
    pairs = pairs.filter(~same).join(prompts.select("prompt_id", "prompt"), on="prompt_id", how="left")
    name = config.name or backend.model
    params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=config.max_tokens)
    requests, rows = [], []
    for row in pairs.iter_rows(named=True):
        for order in _orders(row["a_id"], row["b_id"], config.swap):
            first, second = (row["a_text"], row["b_text"]) if order == "ab" else (row["b_text"], row["a_text"])
            messages = judge_prompts.pairwise(row["prompt"], first, second)
            requests.append(ChatRequest.of(messages, params=params, prefill=judge_prompts.PREFILL))
            rows.append({"prompt_id": row["prompt_id"], "a_id": row["a_id"], "b_id": row["b_id"], "order": order})
    with ctx.progress(f"judge ({name})", len(requests)) as advance:
        answers = run_requests(backend, requests, ctx.cache, read_cache=ctx.read_cache, on_progress=advance)
    for row, request, answer in zip(rows, requests, answers):
        ctx.count_tokens(backend.model, answer.tokens_in, answer.tokens_out)
        raw = None if answer.text is None else request.prefill + answer.text
        verdict = parse_verdict(raw) if raw is not None else None
        swapped = row["order"] == "ba"
        winner = verdict.winner if verdict else None
        scores = (verdict.score_a, verdict.score_b) if verdict else (None, None)
        row.update(
            judge=name,
            winner=UNSWAP[winner] if swapped else winner,
            score_a=scores[1] if swapped else scores[0],
            score_b=scores[0] if swapped else scores[1],
            rationale=verdict.rationale if verdict else None,
            raw=raw,
            parse_ok=bool(verdict and verdict.winner is not None),
            error=answer.error,
        )
    judgments = pl.DataFrame(rows, schema=schema.JUDGMENTS) if rows else schema.empty(schema.JUDGMENTS)
    return schema.StageResult(judgments.select(list(schema.JUDGMENTS)), dropped)
