"""Generate: prompts -> candidates, several per prompt, through a backend and its cache."""

from __future__ import annotations

import json

import polars as pl

from prefdata import schema
from prefdata.backends import ChatRequest, SamplingParams, run_requests
from prefdata.context import Context
from prefdata.io.ids import hash_expr
from prefdata.spec import GenerateSpec

STAGE = "generate"


def requests_for(prompts: pl.DataFrame, config: GenerateSpec) -> tuple[list[ChatRequest], list[dict]]:
    """One request per (prompt, sample); temperatures are used in turn across the samples."""
    system = [{"role": "system", "content": config.system_prompt}] if config.system_prompt else []
    requests, rows = [], []
    for prompt_id, prompt in prompts.select("prompt_id", "prompt").iter_rows():
        for sample in range(config.n):
            params = SamplingParams(temperature=config.temperatures[sample % len(config.temperatures)],
                                    top_p=config.top_p, max_tokens=config.max_tokens, seed=config.seed)
            requests.append(ChatRequest.of(system + prompt, params=params, sample=sample))
            rows.append({"prompt_id": prompt_id, "sample": sample,
                         "params": json.dumps({**params.__dict__, "sample": sample}, sort_keys=True)})
    return requests, rows


def generate(prompts: pl.DataFrame, config: GenerateSpec, ctx: Context) -> schema.StageResult:
    backend = ctx.backend(config.backend)
    requests, rows = requests_for(prompts, config)
    with ctx.progress(f"generate ({backend.model})", len(requests)) as advance:
        answers = run_requests(backend, requests, ctx.cache, read_cache=ctx.read_cache, on_progress=advance)
    for answer in answers:
        ctx.count_tokens(backend.model, answer.tokens_in, answer.tokens_out)
    frame = pl.DataFrame(rows, schema={"prompt_id": pl.String, "sample": pl.Int64, "params": pl.String}).with_columns(
        pl.lit(backend.model).alias("model"),
        pl.Series("response", [a.text for a in answers], dtype=pl.String),
        pl.Series("finish_reason", [a.finish_reason for a in answers], dtype=pl.String),
        pl.Series("tokens_in", [a.tokens_in for a in answers], dtype=pl.Int64),
        pl.Series("tokens_out", [a.tokens_out for a in answers], dtype=pl.Int64),
        pl.Series("error", [a.error for a in answers], dtype=pl.String),
    )
    frame = frame.with_columns(
        hash_expr(pl.concat_str(["prompt_id", "model", "params"], separator="\x1f")).alias("candidate_id"))
    failed = pl.col("error").is_not_null()
    empty = pl.col("response").str.strip_chars().str.len_chars() == 0
    dropped = pl.concat([
        schema.dropped_rows(frame.filter(failed), STAGE, "generation_failed", id_column="candidate_id",
                            detail=pl.col("error")),
        schema.dropped_rows(frame.filter(~failed & empty), STAGE, "empty_response", id_column="candidate_id"),
    ])
    kept = frame.filter(~failed & ~empty)
    return schema.StageResult(schema.conform(kept, schema.CANDIDATES).select(list(schema.CANDIDATES)), dropped)
