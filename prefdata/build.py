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
from prefdata.judge.pairwise import judge
from prefdata.pair import pair
from prefdata.report.card import render_card
from prefdata.spec import Spec, load_spec

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

        judged = judge(generated.kept, spec.judge, ctx, prompts=prompts)
        compared = judged.kept.select("a_id", "b_id").unique().height
        _count(counts, "judge", compared + judged.dropped.height, judged)

        paired = pair(judged.kept, candidates=generated.kept, prompts=prompts)
        _count(counts, "pair", compared, paired)

        data, dropped = paired.kept, [sources.dropped, generated.dropped, judged.dropped, paired.dropped]
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
    manifest = {
        "name": spec.name,
        "rows": data.height,
        "fingerprint": fingerprint(data),
        "counts": counts,
        "dropped": dict(sorted(dropped.group_by("reason").len().iter_rows())),
        "judge": {"parse_ok_rate": round(float(judgments["parse_ok"].mean() or 0.0), 4),
                  "verdicts": judgments.height},
        "tokens": ctx.tokens,
        "cost": ctx.meter.summary(),  # this run's paid requests; cache hits are free
        "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses} if ctx.cache else None,
        "spec": spec.model_dump(mode="json"),
        "versions": _versions(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    (out / "README.md").write_text(render_card(spec, data, manifest), encoding="utf-8")
    return BuildResult(out, data.height, dropped.height, manifest)
