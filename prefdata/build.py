"""The build runner: spec -> sources -> generate -> judge -> pair -> curate -> dataset folder.

The folder holds `data.parquet` (TRL conversational columns plus scores), `dropped.parquet`
(every removed row, with stage and reason), `manifest.json` and `README.md` (the card).
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import polars as pl

from prefdata import schema
from prefdata.backends import RequestCache
from prefdata.context import Context
from prefdata.curate import run_step
from prefdata.errors import PrefdataError
from prefdata.fingerprint import fingerprint
from prefdata.generate import generate, generators
from prefdata.io import read_dataset, write_table
from prefdata.judge.report import judge_report
from prefdata.judge.stage import judge
from prefdata.pair import pair
from prefdata.report.card import render_card
from prefdata.spec import Spec, judge_name, load_spec

PACKAGES = ("prefdata", "polars", "pydantic", "datasets", "torch", "transformers", "trl")


@dataclass
class BuildResult:
    output: Path
    pairs: int
    dropped: int
    manifest: dict


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def read_prompts(spec: Spec) -> schema.StageResult:
    """Prompts from every source (any supported format: its prompts are used), repeats dropped."""
    frames, dropped = [], []
    for source in spec.sources:
        result = read_dataset(spec.resolve(source.path), format=source.format, split=source.split)
        frame = result.frame.select("prompt_id", "prompt", "source", *(["meta"] if "meta" in result.frame.columns
                                                                         else []))
        if source.limit:
            dropped.append(schema.dropped_rows(frame.slice(source.limit), "sources", "over_limit",
                                               id_column="prompt_id"))
            frame = frame.head(source.limit)
        frames.append(schema.conform(frame, schema.PROMPTS))
        dropped.append(result.dropped.with_columns(pl.lit("sources").alias("stage")))
    prompts = pl.concat(frames)
    first = pl.col("prompt_id").is_first_distinct()
    dropped.append(schema.dropped_rows(prompts.filter(~first), "sources", "duplicate_prompt", id_column="prompt_id"))
    kept = prompts.filter(first)
    if kept.height == 0:
        raise PrefdataError("the spec's sources hold no prompts")
    return schema.StageResult(kept, pl.concat(dropped))


def read_gold(spec: Spec) -> pl.DataFrame | None:
    """The spec's known-answer pairs, or None."""
    if spec.gold is None:
        return None
    result = read_dataset(spec.resolve(spec.gold.path), format=spec.gold.format)
    if result.kind != "pairwise" or result.frame.height == 0:
        raise PrefdataError(f"{spec.gold.path}: gold items must be preference pairs (found {result.kind}, "
                            f"{result.frame.height} rows)")
    return result.frame


def _judge_counts(judged: schema.StageResult) -> dict:
    """Comparisons in (gold items aside) = judged + dropped (identical answers need no judge)."""
    regular = judged.kept.filter(~pl.col("gold"))
    dropped = judged.dropped.filter(~pl.col("prompt_id").str.starts_with("gold:"))
    compared = regular.select("prompt_id", "a_id", "b_id").unique().height
    reasons = dict(sorted(dropped.group_by("reason").len().iter_rows()))
    return {"in": compared + dropped.height, "kept": compared, "dropped": reasons, "judgments": regular.height}


def _count(counts: dict, stage: str, rows_in: int, result: schema.StageResult) -> None:
    reasons = result.dropped.group_by("reason").len().sort("reason")
    counts[stage] = {"in": rows_in, "kept": result.kept.height,
                     "dropped": dict(zip(reasons["reason"].to_list(), reasons["len"].to_list()))}


def build(spec: Spec | str | Path, output: str | Path | None = None, use_cache: bool = True,
          quiet: bool = False) -> BuildResult:
    """Run the whole flow and write the dataset folder. Usable from a notebook as from the CLI."""
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    out = Path(output) if output is not None else spec.resolve(spec.output.dir)
    from prefdata.backends.embedded import home

    cache = RequestCache(spec.resolve(spec.cache) if spec.cache else home() / "cache" / "requests.sqlite")
    from prefdata.backends.cost import Meter, price_table

    meter = Meter(price_table({m: p.model_dump() for m, p in spec.prices.items()}), spec.max_cost)
    ctx = Context(cache=cache, read_cache=use_cache, quiet=quiet, meter=meter)
    counts: dict[str, dict] = {}
    try:
        sources = read_prompts(spec)
        _count(counts, "sources", sources.kept.height + sources.dropped.height, sources)
        prompts = sources.kept

        generated = generate(prompts, spec.generate, ctx)
        _count(counts, "generate", prompts.height * spec.generate.n * len(generators(spec.generate)), generated)

        judged = judge(generated.kept, spec.judges, ctx, prompts=prompts, gold=read_gold(spec))
        judging = judge_report(judged.kept, spec.panel.inconsistent, spec.gold)
        ctx.keep("judging", judging)
        voters = [judge_name(j) for j in spec.judges if judge_name(j) not in judging["dropped_judges"]]
        if not voters:
            raise PrefdataError(f"every judge scored below gold.min_accuracy ({spec.gold.min_accuracy}): "
                                f"{judging['judges']}")
        counts["judge"] = _judge_counts(judged)

        scales = {judge_name(j): (j.rubric.scale if j.kind == "pointwise" else 10) for j in spec.judges}
        paired = pair(judged.kept, spec.panel, ctx, candidates=generated.kept, prompts=prompts, scales=scales,
                      judges=voters)
        _count(counts, "pair", counts["judge"]["kept"], paired)

        judge_dropped = judged.dropped.filter(~pl.col("prompt_id").str.starts_with("gold:"))
        data, dropped = paired.kept, [sources.dropped, generated.dropped, judge_dropped, paired.dropped]
        for index, step in enumerate(spec.curate):
            curated = run_step(data, step, ctx)
            name = step.step if step.step not in counts else f"{step.step}_{index}"
            _count(counts, name, data.height, curated)
            data = curated.kept
            dropped.append(curated.dropped)
    finally:
        cache.close()
    return _write(spec, out, data, pl.concat(dropped), generated.kept, judged.kept, counts, ctx)


def _write(spec: Spec, out: Path, data: pl.DataFrame, dropped: pl.DataFrame, candidates: pl.DataFrame,
           judgments: pl.DataFrame, counts: dict, ctx: Context) -> BuildResult:
    out.mkdir(parents=True, exist_ok=True)
    write_table(data, out / "data.parquet", form=spec.output.form)
    dropped.write_parquet(out / "dropped.parquet")
    judgments.write_parquet(out / "judgments.parquet")
    candidates.write_parquet(out / "candidates.parquet")
    if ctx.artifacts.get("scores"):
        pl.concat(ctx.artifacts["scores"]).write_parquet(out / "scores.parquet")
    manifest = {
        "name": spec.name,
        "rows": data.height,
        "fingerprint": fingerprint(data),
        "counts": counts,
        "dropped": dict(sorted(dropped.group_by("reason").len().iter_rows())),
        "judging": ctx.artifacts.get("judging", [{}])[0],
        "tokens": ctx.tokens,
        "cost": ctx.meter.summary(),  # this run's paid requests; cache hits are free
        "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses} if ctx.cache else None,
        "spec": spec.model_dump(mode="json"),
        "versions": _versions(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    (out / "README.md").write_text(render_card(spec, data, manifest), encoding="utf-8")
    return BuildResult(out, data.height, dropped.height, manifest)
