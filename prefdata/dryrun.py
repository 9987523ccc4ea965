"""`prefdata build --dry-run`: requests, tokens and cost of a build, before anything is spent.

Generation is counted exactly (its requests are built and looked up in the request cache); judging
is estimated from the number of comparisons, since the answers it judges do not exist yet. Input
tokens are estimated at 4 characters a token; output tokens are counted at `max_tokens`, so the
cost is an upper bound for the answers.
"""

from __future__ import annotations

import sqlite3
from math import comb
from pathlib import Path

from prefdata.backends.cost import Meter, price_table
from prefdata.backends.ratelimit import estimate_tokens
from prefdata.spec import BackendSpec, Spec

JUDGE_TEMPLATE_TOKENS = 200  # the judge's instructions around the prompt and answers


def _model(spec: BackendSpec) -> str:
    if spec.kind == "embedded":
        from prefdata.backends.embedded import MODEL_NAME

        return MODEL_NAME
    return spec.model or ""


def _cached(path: Path, keys: list[str]) -> int:
    """How many of `keys` the cache holds; read-only, so a dry run writes nothing."""
    if not path.is_file():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        found = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            found += db.execute(f"SELECT COUNT(*) FROM responses WHERE key IN ({','.join('?' * len(chunk))})",
                                chunk).fetchone()[0]
        return found
    finally:
        db.close()


def _line(meter: Meter, stage: str, backend: BackendSpec, requests: int, cached: int, tokens_in: int,
          tokens_out: int) -> dict:
    price = meter.price(backend.kind, _model(backend))
    usd = None if price is None else price.of(tokens_in, tokens_out)
    return {"stage": stage, "backend": backend.kind, "model": _model(backend), "requests": requests,
            "cached": cached, "tokens_in": tokens_in, "tokens_out_max": tokens_out,
            "usd_max": None if usd is None else round(usd, 6)}


def estimate(spec: Spec) -> dict:
    """What a build of `spec` would send: per stage and model, requests, cache hits, tokens and USD."""
    from prefdata.build import read_prompts
    from prefdata.generate import generators, requests_for

    from prefdata.preflight import check_request_count, check_spec
    from prefdata.sources import read_gold

    cache = check_spec(spec)  # what the build would refuse, the dry run refuses too
    meter = Meter(price_table({m: p.model_dump() for m, p in spec.prices.items()}), spec.max_cost)
    if spec.generate is None:  # curation only: no model is asked anything
        return {"prompts": 0, "lines": [], "requests": 0, "cached": 0, "tokens_in": 0, "tokens_out_max": 0,
                "usd_max": 0.0, "price_unknown": [], "max_cost": spec.max_cost}
    prompts = read_prompts(spec).kept
    check_request_count(spec, prompts.height)
    read_gold(spec)
    requests, _ = requests_for(prompts, spec.generate)
    lines = []
    prompt_tokens = sum(estimate_tokens(r) - r.params.max_tokens for r in requests) // max(len(requests), 1)
    for backend in generators(spec.generate):
        keys = [r.key("transformers" if backend.kind == "embedded" else backend.kind, _model(backend))
                for r in requests]
        cached = _cached(cache, keys)
        todo = len(requests) - cached
        lines.append(_line(meter, "generate", backend, len(requests), cached, todo * prompt_tokens,
                           todo * spec.generate.max_tokens))
    per_prompt = spec.generate.n * len(generators(spec.generate))
    for judge in spec.judges:
        pointwise = getattr(judge, "kind", "pairwise") == "pointwise"
        orders = 1 if pointwise or not judge.swap else 2
        asks = prompts.height * (per_prompt if pointwise else comb(per_prompt, 2) * orders)
        answers_in = (1 if pointwise else 2) * spec.generate.max_tokens
        lines.append(_line(meter, "judge", judge.backend, asks, 0, asks * (prompt_tokens + answers_in +
                                                                            JUDGE_TEMPLATE_TOKENS),
                           asks * judge.max_tokens))
    known = [line["usd_max"] for line in lines if line["usd_max"] is not None]
    return {"prompts": prompts.height, "lines": lines,
            "requests": sum(line["requests"] - line["cached"] for line in lines),
            "cached": sum(line["cached"] for line in lines),
            "tokens_in": sum(line["tokens_in"] for line in lines),
            "tokens_out_max": sum(line["tokens_out_max"] for line in lines),
            "usd_max": round(sum(known), 6), "price_unknown": sorted({line["model"] for line in lines
                                                                       if line["usd_max"] is None}),
            "max_cost": spec.max_cost}
