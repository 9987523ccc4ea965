"""`prefdata build --dry-run`: requests, tokens and cost of a build, before anything is spent.

The dry run walks the build's own stage list (`prefdata.flow.stages`) from the sources to the judge, against
the request cache, read-only, with backends that never answer: every request whose inputs are known is built exactly as
the build builds it and looked up (gold items, and re-asks of cached unreadable verdicts, included); one the
cache does not hold is counted as to send. Judging a prompt whose answers are not all cached cannot be built
(the answers do not exist yet), so it is estimated from the number of comparisons, assuming no identical
answers and no re-asks, and counted as `estimated`; so are the turns of a conversation after the first one
the cache does not hold, and its candidates (each turn at its `max_tokens`). Input tokens are estimated at 4
characters a token; output tokens are counted at `max_tokens`, so the cost is an upper bound for the answers.
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import comb
from pathlib import Path

import polars as pl

from prefdata.backends import RequestCache, gives_logprobs
from prefdata.backends.base import ChatResponse
from prefdata.backends.cost import Meter, price_table
from prefdata.backends.ratelimit import estimate_tokens
from prefdata.context import Context
from prefdata.spec import BackendSpec, Spec, judge_name

JUDGE_TEMPLATE_TOKENS = 200  # the judge's instructions around the prompt and answers
SIMULATOR_TEMPLATE_TOKENS = 100  # the user simulator's instruction around the conversation
NOT_CACHED = "not_cached"


def _model(spec: BackendSpec) -> str:
    if spec.kind == "embedded":
        from prefdata.backends.embedded import MODEL_NAME

        return MODEL_NAME
    return spec.model or ""


def _name(spec: BackendSpec) -> str:
    """The backend's name in cache keys (the embedded model runs on the transformers backend)."""
    from prefdata.backends.registry import cache_name

    return cache_name(spec.kind)


@dataclass
class _Tally:
    """Per progress label (`generate (model)`, `judge (name)`): requests asked, found, to send, tokens."""

    label: str = ""
    asked: Counter = field(default_factory=Counter)
    cached: Counter = field(default_factory=Counter)
    sent: Counter = field(default_factory=Counter)
    tokens_in: Counter = field(default_factory=Counter)
    tokens_out: Counter = field(default_factory=Counter)
    seen: set = field(default_factory=set)  # keys counted as to send


class _ReadOnlyCache:
    """The request cache read-only (`RequestCache.read_only`: a dry run writes nothing), its finds tallied."""

    def __init__(self, path: Path, tally: _Tally):
        self.cache, self.tally = RequestCache.read_only(path), tally
        self.hits = self.misses = 0

    def get_many(self, keys) -> dict[str, ChatResponse]:
        found = self.cache.get_many(keys)
        self.tally.cached[self.tally.label] += len(found)
        return found

    def put_many(self, *args) -> None:
        pass

    def close(self) -> None:
        self.cache.close()


class _CacheOnly:
    """A backend that answers nothing: each request the cache missed is one the build would send."""

    batch_size = 1 << 30

    def __init__(self, spec: BackendSpec, tally: _Tally):
        self.name, self.model, self.tally = _name(spec), _model(spec), tally
        self.gives_logprobs = gives_logprobs(spec.kind)  # the judges' requests, and so their keys, depend on it

    def generate(self, requests) -> list[ChatResponse]:
        label = self.tally.label
        for request in requests:
            key = request.key(self.name, self.model)
            if key in self.tally.seen:  # an earlier stage or judge sends it; the build finds it cached by then
                self.tally.cached[label] += 1
                continue
            self.tally.seen.add(key)
            self.tally.sent[label] += 1
            self.tally.tokens_in[label] += estimate_tokens(request) - request.params.max_tokens
            # a reward request writes nothing: its max_tokens is the longest input it scores
            self.tally.tokens_out[label] += 0 if self.name.startswith("reward-") else request.params.max_tokens
        return [ChatResponse(None, error=f"{NOT_CACHED}: a dry run sends nothing") for _ in requests]


@dataclass
class _DryContext(Context):
    tally: _Tally = field(default_factory=_Tally)

    @contextmanager
    def progress(self, description: str, total: int):
        self.tally.label = description.split(", re-ask")[0]  # re-asks count with their judge
        self.tally.asked[self.tally.label] += total
        yield lambda n: None


@dataclass
class _Replayed:
    tally: _Tally
    read: int = 0  # prompts the sources gave
    prompts: pl.DataFrame | None = None  # the prompts the generate stage got (multi-turn: the conversations the
    # cache completed)
    waiting: list[str] = field(default_factory=list)  # prompts whose answers are not all cached: their judging
    # could not be built
    unfinished: list[dict] = field(default_factory=list)  # multi-turn: conversations the cache could not complete
    # (prompt so far, turn, step)


PAID = ("sources", "simulate", "generate", "judge")  # the stages up to the last one that sends requests


def _replay(spec: Spec, cache: Path) -> _Replayed:
    """Run the build's own stages up to judge on cached answers only."""
    from prefdata.generate import generators

    tally = _Tally()
    ctx = _DryContext(cache=_ReadOnlyCache(cache, tally), quiet=True, tally=tally)
    simulator = [spec.generate.simulator().backend] if spec.generate.turns > 1 else []
    for backend in generators(spec.generate) + [b for b in simulator if b is not None] + \
            [j.backend for j in spec.judges if j.kind != "reward_model"]:
        ctx.backends[backend.model_dump_json()] = _CacheOnly(backend, tally)
    for judge_spec in spec.judges:  # a reward model's cache keys name its backend and weight hash
        if judge_spec.kind == "reward_model":
            from prefdata.backends import make_reward_backend

            dry = ctx.backends["reward:" + judge_spec.backend.model_dump_json()] = _CacheOnly(judge_spec.backend, tally)
            real = make_reward_backend(judge_spec.backend)  # hashes the weights; loads nothing
            dry.name, dry.model = real.name, real.model
    try:
        return _replay_stages(spec, ctx, tally)
    finally:
        ctx.cache.close()


def _replay_stages(spec: Spec, ctx: Context, tally: _Tally) -> _Replayed:
    """The build's stage list (`prefdata.flow.stages`), each stage's own `run` up to judge; nothing is saved and
    no stage's `after` runs (every request the cache lacks "failed" here). Between stages the flow keeps what the
    cache could answer: conversations it completed, and the candidates of prompts whose answers are all cached."""
    from prefdata.flow import stages
    from prefdata.stage import Flow

    flow, replayed = Flow(), _Replayed(tally)
    for stage in stages(spec, ctx, spec.resolve(spec.output.dir), validate=_never):
        if (stage.group or stage.name) not in PAID:
            break
        output = stage.run(flow)
        kept = output.kept
        if stage.name == "sources":
            replayed.read = kept.height
        elif stage.name == "simulate":
            stuck = output.dropped.filter(pl.col("detail").str.contains(NOT_CACHED, literal=True))
            replayed.unfinished = [json.loads(record) for record in stuck["record"]]
        elif stage.name == "generate":
            waiting = output.dropped.filter(pl.col("detail").str.starts_with(NOT_CACHED))["prompt_id"].unique()
            replayed.waiting = waiting.to_list()
            kept = kept.filter(~pl.col("prompt_id").is_in(waiting.implode()))
        flow.tables[stage.output] = kept
        flow.tables.update(output.tables)
    replayed.prompts = flow.tables["prompts"]
    return replayed


def _never(flow) -> None:
    raise AssertionError("a dry run stops before validation")


def _conversation_estimate(spec: Spec, unfinished: dict) -> dict:
    """What one conversation the cache could not complete still asks after the request it stopped at (which the
    replay counted): requests and input tokens of the assistant's and the simulator's turns, and the tokens of the
    finished conversation (each turn counted at its max_tokens)."""
    turns, answer, turn = spec.generate.turns, spec.generate.max_tokens, spec.generate.simulator().max_tokens
    tokens = sum(len(m["content"]) for m in unfinished["prompt"]) // 4 + 4 * len(unfinished["prompt"])
    if unfinished["step"] == "assistant":  # stopped at the assistant's turn t: the user's turn t + 1 comes next
        tokens += answer + 4
        steps = ["user"] + ["assistant", "user"] * (turns - 1 - unfinished["turn"])
    else:  # stopped at the user's turn u: the assistant's turns u .. turns - 1 (each with a user turn) come next
        tokens += turn + 4
        steps = ["assistant", "user"] * (turns - unfinished["turn"])
    found = {"assistant": 0, "assistant_in": 0, "user": 0, "user_in": 0}
    for step in steps:
        found[step] += 1
        found[f"{step}_in"] += tokens + (SIMULATOR_TEMPLATE_TOKENS if step == "user" else 0)
        tokens += (answer if step == "assistant" else turn) + 4
    return {**found, "final": tokens}


def _line(meter: Meter, stage: str, name: str, backend: BackendSpec, requests: int, cached: int, to_send: int,
          estimated: int, tokens_in: int, tokens_out: int) -> dict:
    price = meter.price(backend.kind, _model(backend))
    usd = None if price is None else price.of(tokens_in, tokens_out)
    return {"stage": stage, "name": name, "backend": backend.kind, "model": _model(backend), "requests": requests,
            "cached": cached, "to_send": to_send, "estimated": estimated, "tokens_in": tokens_in,
            "tokens_out_max": tokens_out, "usd_max": None if usd is None else round(usd, 6)}


def _judge_estimate(spec: Spec, judge, prompts: int, prompt_tokens: int) -> tuple[int, int, int]:
    """(requests, tokens in, tokens out) for judging `prompts` prompts whose answers do not exist yet."""
    from prefdata.generate import generators

    per_prompt = spec.generate.n * len(generators(spec.generate))
    pointwise = judge.kind in ("pointwise", "reward_model")  # one request per answer
    orders = 1 if pointwise or not judge.swap else 2
    asks = prompts * (per_prompt if pointwise else comb(per_prompt, 2) * orders)
    answers_in = (1 if pointwise else 2) * spec.generate.max_tokens
    if judge.kind == "reward_model":  # no judge template, no answer written
        return asks, asks * (prompt_tokens + answers_in), 0
    return asks, asks * (prompt_tokens + answers_in + JUDGE_TEMPLATE_TOKENS), asks * judge.max_tokens


def _simulate_lines(spec: Spec, meter: Meter, tally: _Tally, rest: list[dict]) -> list[dict]:
    """The simulate stage's rows: the assistant's earlier turns and the user simulator's, each exact where the cache
    holds the conversation so far and estimated from where it stopped otherwise."""
    from prefdata.generate import generators

    assistant = generators(spec.generate)[0]
    user = spec.generate.simulator().backend or assistant
    lines = []
    for name, backend, label, max_tokens in (
            ("assistant", assistant, f"simulate assistant ({_model(assistant)})", spec.generate.max_tokens),
            ("user_simulator", user, f"simulate user ({_model(user)})", spec.generate.simulator().max_tokens)):
        step = name.removesuffix("_simulator")
        guess, guess_in = sum(r[step] for r in rest), sum(r[f"{step}_in"] for r in rest)
        lines.append(_line(meter, "simulate", name, backend, tally.asked[label] + guess, tally.cached[label],
                           tally.sent[label] + guess, guess, tally.tokens_in[label] + guess_in,
                           tally.tokens_out[label] + guess * max_tokens))
    return lines


def estimate(spec: Spec) -> dict:
    """What a build of `spec` would send: per stage and judge, requests, cache hits, tokens and USD."""
    from prefdata.generate import generators, requests_for
    from prefdata.preflight import check_spec

    cache = check_spec(spec)  # what the build would refuse, the dry run refuses too
    meter = Meter(price_table({m: p.model_dump() for m, p in spec.prices.items()}), spec.max_cost)
    if spec.generate is None:  # curation only: no model is asked anything
        return {"prompts": 0, "lines": [], "requests": 0, "cached": 0, "estimated": 0, "tokens_in": 0,
                "tokens_out_max": 0, "usd_max": 0.0, "price_unknown": [], "max_cost": spec.max_cost}
    replayed = _replay(spec, cache)
    tally = replayed.tally
    rest = [_conversation_estimate(spec, stuck) for stuck in replayed.unfinished]
    lines = _simulate_lines(spec, meter, tally, rest) if spec.generate.turns > 1 else []
    n = spec.generate.n
    for backend in generators(spec.generate):
        label = f"generate ({_model(backend)})"
        guess_in = n * sum(r["final"] for r in rest)  # the candidates of conversations not complete yet
        lines.append(_line(meter, "generate", "generate", backend, tally.asked[label] + n * len(rest),
                           tally.cached[label], tally.sent[label] + n * len(rest), n * len(rest),
                           tally.tokens_in[label] + guess_in,
                           tally.tokens_out[label] + n * len(rest) * spec.generate.max_tokens))
    requests, _ = requests_for(replayed.prompts, spec.generate)
    sizes = [estimate_tokens(r) - r.params.max_tokens for r in requests] + [r["final"] for r in rest for _ in range(n)]
    prompt_tokens = sum(sizes) // max(len(sizes), 1)
    for judge in spec.judges:
        label = f"judge ({judge_name(judge)})"
        guess, guess_in, guess_out = _judge_estimate(spec, judge, len(replayed.waiting) + len(rest), prompt_tokens)
        lines.append(_line(meter, "judge", judge_name(judge), judge.backend, tally.asked[label] + guess,
                           tally.cached[label], tally.sent[label] + guess, guess, tally.tokens_in[label] + guess_in,
                           tally.tokens_out[label] + guess_out))
    known = [line["usd_max"] for line in lines if line["usd_max"] is not None]
    total = lambda key: sum(line[key] for line in lines)  # noqa: E731
    return {"prompts": replayed.read, "lines": lines, "requests": total("to_send"), "cached": total("cached"),
            "estimated": total("estimated"), "tokens_in": total("tokens_in"),
            "tokens_out_max": total("tokens_out_max"), "usd_max": round(sum(known), 6),
            "price_unknown": sorted({line["model"] for line in lines if line["usd_max"] is None}),
            "max_cost": spec.max_cost}
