"""The build runner: spec -> sources -> generate -> judge -> pair -> curate -> validate -> dataset folder.

Each stage's output is saved under `<output>/.run/` with the fingerprint of its inputs and config, so a
re-run skips finished stages and an interrupted one resumes from the request cache (`prefdata.runner`).
The folder holds `data.parquet` (TRL conversational columns plus scores), `dropped.parquet` (every removed
row, with stage and reason), `manifest.json`, `validation.json` (the stamp), `README.md` (the card) and
its plots, and the intermediate tables (`candidates`, `judgments`, `scores`).
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
from prefdata.errors import PrefdataError
from prefdata.fingerprint import fingerprint
from prefdata.flow import PUBLISHED, RequestsFailed, check_review_log, stages
from prefdata.io import write_table
from prefdata.outdir import BUILD as BUILD_FILES
from prefdata.outdir import claim, remove_stale
from prefdata.preflight import chat_template, check_spec
from prefdata.report.card import render_card
from prefdata.report.hub import SFT_FILE, check_split_folder, write_splits
from prefdata.report.plots import write_plots
from prefdata.runner import Runner, StageSkipped
from prefdata.spec import Spec, load_spec
from prefdata.stage import GROUPS, Flow, Output

PACKAGES = ("prefdata", "polars", "pydantic", "datasets", "torch", "transformers", "trl")
__all__ = ["BuildResult", "RequestsFailed", "build"]


@dataclass
class BuildResult:
    output: Path
    pairs: int
    dropped: int
    manifest: dict
    stopped_after: str | None = None  # set when --until ended the run early
    validation_passed: bool | None = None
    failed_requests: dict | None = None  # stage -> {failed, requests, first_error}: a re-run retries them
    failed_checks: list[str] | None = None  # error-level checks that failed, each "name (message)"
    removed: list[str] | None = None  # files an earlier build left in the folder that this one did not write


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _source_rows(flow: Flow, spec: Spec) -> dict:
    """What each spec source gave (rows read, taken by its limit or weight), and the rows of the final data by
    their `source` value. Paths as the spec shows them: ${ENV} values and URL credentials stay out."""
    data = flow.tables["data"]
    final = data.group_by("source").len().sort("source") if "source" in data.columns else None
    return {"read": [{**s, "path": spec.shown(s["path"])} for s in flow.returned["sources"]["mix"]],
            "in_data": dict(final.iter_rows()) if final is not None else {}}


def build(spec: Spec | str | Path, output: str | Path | None = None, use_cache: bool = True,
          quiet: bool = False, fresh: bool = False, start: str | None = None,
          until: str | None = None) -> BuildResult:
    """Run the whole flow and write the dataset folder. Usable from a notebook as from the CLI.

    `fresh`: ignore saved stages; `start`: re-run from this stage on; `until`: stop after this stage.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    cache_file = check_spec(spec)  # files, formats and the cache, before anything runs
    out = Path(output) if output is not None else spec.resolve(spec.output.dir)
    claim(out, BUILD_FILES, "prefdata build")  # before anything runs: never beside another dataset
    check_split_folder(out)
    check_review_log(out)
    from prefdata.backends.cost import Meter, price_table

    # --until validate is the whole build: validation is its last stage
    runner = Runner(out / ".run", fresh=fresh, start=start, until=None if until == "validate" else until)
    skipped = {"simulate", "generate", "judge", "pair"} & {start, until}
    if spec.generate is None and skipped:
        raise PrefdataError(f"this spec has no {min(skipped)} stage (generate: null): --from and --until take "
                            "sources, curate or validate")
    cache = RequestCache(cache_file)
    meter = Meter(price_table({m: p.model_dump() for m, p in spec.prices.items()}), spec.max_cost)
    engine = _engine(spec)
    ctx = Context(cache=cache, read_cache=use_cache, quiet=quiet, meter=meter, run_folder=runner.folder,
                  engine=engine)
    flow, written, previous = Flow(), {}, 0
    try:
        for stage in stages(spec, ctx, out, lambda flow: _write_and_validate(spec, out, flow, written)):
            position = GROUPS.index(stage.group or stage.name)
            for group in GROUPS[previous:position]:  # --until a stage this spec has not got, or after curate
                runner.done(group)
            runner.run(stage, flow)
            previous = position
    except StageSkipped as stop:
        return BuildResult(runner.folder, 0, 0, {"ran": runner.ran, "reused": runner.reused}, str(stop))
    finally:
        cache.close()
        if engine is not None:
            engine.shutdown()
    return _finish(spec, out, flow, ctx, runner, written)


def _engine(spec: Spec):
    """The Ray cluster generation and judging run on (`engine: {kind: ray}`), connected before any stage runs
    so that an unreachable address fails at once; None for this process."""
    if spec.engine.kind != "ray" or spec.generate is None:
        return None
    from prefdata.backends.ray_pool import RayEngine

    engine = RayEngine(spec.engine.address, spec.engine.workers, spec.engine.cpus_per_worker,
                       spec.engine.gpus_per_worker)
    engine.connect()
    return engine


def _validate(out: Path, spec: Spec, review: dict | None):
    """The catalogue over the written data, and the stamp beside it (naming the decision log it applied: a
    later decision makes the stamp stale)."""
    from prefdata.extensions import validators

    return validators().validate(out, spec=spec.model_dump(mode="json"), stamp=True,
                                 review_log=review and review["log"])


SFT_FILES = (SFT_FILE, "sft.dropped.parquet")


def _best_of_n(data: pl.DataFrame, spec: Spec) -> schema.StageResult | None:
    """`output.sft`: the best answer per prompt (before anything is written: judged data it needs is checked)."""
    if spec.output.sft is None:
        return None
    from prefdata.best_of_n import best_of_n

    return best_of_n(data, spec.output.sft)


def _write_sft(examples: schema.StageResult | None, spec: Spec, out: Path) -> dict | None:
    """sft.parquet and the prompts left out (with reasons) beside it; their counts."""
    if examples is None:
        return None
    examples.kept.write_parquet(out / SFT_FILES[0])
    examples.dropped.write_parquet(out / SFT_FILES[1])
    return {"prompts": examples.kept.height + examples.dropped.height, "exported": examples.kept.height,
            "dropped": dict(sorted(examples.dropped.group_by("reason").len().iter_rows())),
            **spec.output.sft.model_dump()}


def _write_and_validate(spec: Spec, out: Path, flow: Flow, written: dict) -> Output:
    """The validate stage: the data, its splits, the dropped rows, the side tables and the best-of-n set written,
    then checked and stamped. It drops nothing: a failed check is the stamp's verdict, not a lost row."""
    data = flow.tables["data"]
    examples = _best_of_n(data, spec)
    out.mkdir(parents=True, exist_ok=True)
    template = chat_template(spec)
    write_table(data, out / "data.parquet", form=spec.output.form, chat_template=template)
    written["splits"] = write_splits(data, out, spec.output.form, chat_template=template)
    pl.concat(flow.dropped, how="vertical_relaxed").write_parquet(out / "dropped.parquet")
    written["tables"] = [name for name in PUBLISHED if name in flow.tables]
    for name in written["tables"]:
        flow.tables[name].write_parquet(out / f"{name}.parquet")
    written["sft"] = _write_sft(examples, spec, out)
    written["report"] = _validate(out, spec, flow.facts.get("review"))
    return Output(data, schema.empty(schema.DROPPED))


def _finish(spec: Spec, out: Path, flow: Flow, ctx: Context, runner: Runner, written: dict) -> BuildResult:
    """manifest.json, the plots and the card, from the flow and the validate stage's report."""
    data, report, sft = flow.tables["data"], written["report"], written["sft"]
    dropped = pl.concat(flow.dropped, how="vertical_relaxed")
    manifest = {
        "name": spec.shown(spec.name),  # ${ENV} values and URL credentials stay out of written files
        "rows": data.height,
        "fingerprint": fingerprint(data),
        "counts": {k: v for k, v in flow.counts.items() if k != "validate"},
        "dropped": dict(sorted(dropped.group_by("reason").len().iter_rows())),
        "judging": flow.facts.get("judging", {}),
        "validation": {"passed": report.passed,
                       "checks": [{k: c.as_dict()[k] for k in ("name", "severity", "passed", "skipped", "value",
                                                               "message")} for c in report.checks]},
        "stages": {"ran": runner.ran, "reused": runner.reused},
        "tokens": ctx.meter.tokens(),  # every answer used, generation and judging, paid or cached
        "cost": ctx.meter.summary(),  # this run's paid requests; cache hits are free
        "failed_requests": flow.failed,  # per stage; those stages are not marked finished
        "review": flow.facts.get("review"),
        "sft": sft,
        "sources": _source_rows(flow, spec),
        **({"conversation": flow.facts["conversation"]} if "conversation" in flow.facts else {}),  # multi-turn
        "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses} if ctx.cache else None,
        "spec": spec.public(),  # ${ENV} values stay out of written files
        "versions": _versions(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    plots = write_plots(data, out)
    splits = written["splits"]
    files = {"data.parquet", "dropped.parquet", "manifest.json", "validation.json", "README.md", *plots,
             *(f"{name}.parquet" for name in written["tables"]), *(SFT_FILES if sft else ()),
             *(["data"] if "data" in {Path(p).parts[0] for p in splits.values()} else [])}
    removed = remove_stale(out, BUILD_FILES, files, keep=(".run", "review.jsonl"))  # a person's work stays
    (out / "README.md").write_text(render_card(spec, data, manifest, plots, splits), encoding="utf-8")
    failed = [f"{c.name} ({c.message})" for c in report.checks if c.severity == "error" and not c.passed]
    return BuildResult(out, data.height, dropped.height, manifest, validation_passed=report.passed,
                       failed_requests=flow.failed, failed_checks=failed, removed=removed)
