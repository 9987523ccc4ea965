"""Generate: prompts -> candidates, through each generator's backend and the request cache.

Strategies (GenerateSpec): several generator models (`backends`), `n` candidates per prompt from each,
`temperatures` used in turn across the n, and system-prompt contrast (`contrast`: the n alternate
between a good and a bad system prompt). Each candidate's `params` records how it was made.
"""

from __future__ import annotations

import json

import polars as pl

from prefdata import schema
from prefdata.backends import ChatRequest, SamplingParams, run_requests
from prefdata.context import Context
from prefdata.io.ids import hash_expr
from prefdata.spec import BackendSpec, GenerateSpec

STAGE = "generate"


def generators(config: GenerateSpec) -> list[BackendSpec]:
    return list(config.backends) if config.backends else [config.backend]


def system_prompt(config: GenerateSpec, sample: int) -> tuple[str | None, str | None]:
    """(system prompt, its label) for one sample."""
    if config.contrast is not None:
        return (config.contrast.good, "good") if sample % 2 == 0 else (config.contrast.bad, "bad")
    return config.system_prompt, None


def requests_for(prompts: pl.DataFrame, config: GenerateSpec) -> tuple[list[ChatRequest], list[dict]]:
    """One request per (prompt, sample) for one generator; temperatures and contrast go in turn across samples."""
    requests, rows = [], []
    plans = []
    for sample in range(config.n):
        system, label = system_prompt(config, sample)
        params = SamplingParams(temperature=config.temperatures[sample % len(config.temperatures)],
                                top_p=config.top_p, max_tokens=config.max_tokens, seed=config.seed)
        recorded = {**params.__dict__, "sample": sample, **({"system": label} if label else {})}
        plans.append(([{"role": "system", "content": system}] if system else [], params, sample,
                      json.dumps(recorded, sort_keys=True)))
    for prompt_id, prompt in prompts.select("prompt_id", "prompt").iter_rows():
        for system, params, sample, recorded in plans:
            requests.append(ChatRequest.of(system + prompt, params=params, sample=sample))
            rows.append({"prompt_id": prompt_id, "sample": sample, "params": recorded})
    return requests, rows


def _candidates(rows: list[dict], model: str, answers) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"prompt_id": pl.String, "sample": pl.Int64, "params": pl.String})
    return frame.with_columns(
        pl.lit(model).alias("model"),
        pl.Series("response", [a.text for a in answers], dtype=pl.String),
        pl.Series("finish_reason", [a.finish_reason for a in answers], dtype=pl.String),
        pl.Series("tokens_in", [a.tokens_in for a in answers], dtype=pl.Int64),
        pl.Series("tokens_out", [a.tokens_out for a in answers], dtype=pl.Int64),
        pl.Series("error", [a.error for a in answers], dtype=pl.String),
    )


def generate(prompts: pl.DataFrame, config: GenerateSpec, ctx: Context) -> schema.StageResult:
    requests, rows = requests_for(prompts, config)
    frames = []
    for spec in generators(config):
        backend = ctx.backend(spec)
        with ctx.progress(f"generate ({backend.model})", len(requests)) as advance:
            answers = run_requests(backend, requests, ctx.cache, read_cache=ctx.read_cache, on_progress=advance)
        frames.append(_candidates(rows, backend.model, answers))
    frame = pl.concat(frames).with_columns(
        hash_expr(pl.concat_str(["prompt_id", "model", "params"], separator="\x1f")).alias("candidate_id"))
    failed = pl.col("error").is_not_null()
    empty = pl.col("response").str.strip_chars().str.len_chars() == 0
    reason = pl.when(pl.col("error").str.starts_with("max_cost_reached")).then(pl.lit("max_cost_reached")) \
        .otherwise(pl.lit("generation_failed"))
    dropped = pl.concat([
        schema.dropped_rows(frame.filter(failed), STAGE, reason, id_column="candidate_id", detail=pl.col("error")),
        schema.dropped_rows(frame.filter(~failed & empty), STAGE, "empty_response", id_column="candidate_id"),
    ])
    kept = frame.filter(~failed & ~empty)
    return schema.StageResult(schema.conform(kept, schema.CANDIDATES).select(list(schema.CANDIDATES)), dropped)
