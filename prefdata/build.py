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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import polars as pl

from prefdata import schema
from prefdata.backends import RequestCache
from prefdata.context import Context
from prefdata.conversation import rollout_config, simulate
from prefdata.curate import run_step
from prefdata.errors import PrefdataError
from prefdata.fingerprint import fingerprint
from prefdata.generate import generate, generators
from prefdata.io import write_table
from prefdata.judge.report import judge_report
from prefdata.judge.stage import judge
from prefdata.outdir import BUILD as BUILD_FILES
from prefdata.outdir import claim, remove_stale
from prefdata.pair import pair
from prefdata.preflight import chat_template, check_request_count, check_spec
from prefdata.report.card import render_card
from prefdata.report.hub import SFT_FILE, check_split_folder, write_splits
from prefdata.report.plots import write_plots
from prefdata.runner import Runner, StageSkipped
from prefdata.sources import read_gold, read_pairs, read_prompts
from prefdata.spec import Spec, judge_name, load_spec

PACKAGES = ("prefdata", "polars", "pydantic", "datasets", "torch", "transformers", "trl")
__all__ = ["BuildResult", "build", "read_prompts"]


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


class RequestsFailed(PrefdataError):
    """Every request of a stage failed (a wrong base_url, key or model): nothing is left to build on."""

    exit_code = 1


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def _counts(rows_in: int, result: schema.StageResult) -> dict:
    reasons = dict(sorted(result.dropped.group_by("reason").len().iter_rows()))
    return {"in": rows_in, "kept": result.kept.height, "dropped": reasons}


RETRYABLE = ("generation_failed", "max_cost_reached")


def _incomplete(result: schema.StageResult) -> bool:
    """Did requests fail or get refused (max_cost)? Then the stage must run again next time."""
    if "error" in result.kept.columns and result.kept["error"].is_not_null().any():
        return True
    return result.dropped["reason"].is_in(RETRYABLE).any()


def _failures(stage: str, errors: pl.Series, requests: int, runner: Runner) -> dict:
    """How many of a stage's requests failed, and the first error; raises when all of them did."""
    errors = errors.drop_nulls()
    failed = errors.filter(~errors.str.starts_with("max_cost_reached"))  # refused by the budget, not failed
    found = {"failed": failed.len(), "requests": requests, "first_error": failed[0] if failed.len() else None}
    if requests and failed.len() == requests:
        raise RequestsFailed(f"all {requests} {stage} requests failed, so there is nothing to build on (first error: "
                             f"{found['first_error']}); each failed row and its error is in {runner.folder}; fix the "
                             f"backend (base_url, api_key_env, model) and run the build again")
    return found


def _judge_counts(judged: schema.StageResult) -> dict:
    """Comparisons in (gold items aside) = judged + dropped (identical answers need no judge)."""
    regular = judged.kept.filter(~pl.col("gold"))
    dropped = judged.dropped.filter(~pl.col("prompt_id").str.starts_with("gold:"))
    compared = regular.select("prompt_id", "a_id", "b_id").unique().height
    reasons = dict(sorted(dropped.group_by("reason").len().iter_rows()))
    return {"in": compared + dropped.height, "kept": compared, "dropped": reasons, "judgments": regular.height}


@dataclass
class _Flow:
    """What the stages hand on: the data, every dropped row, the counts, and the side tables."""

    data: pl.DataFrame
    dropped: list[pl.DataFrame]
    counts: dict
    tables: dict[str, pl.DataFrame]
    judging: dict
    failed: dict = field(default_factory=dict)  # stage -> failed requests, which a re-run retries
    review: dict | None = None  # what a person decided (`prefdata review`), when the folder holds decisions
    sources: list[dict] = field(default_factory=list)  # what each spec source gave to the mix
    conversation: dict | None = None  # multi-turn builds: turns, and the models that wrote the earlier turns


def _generate_judge_pair(spec: Spec, ctx: Context, runner: Runner) -> _Flow:
    sources = read_prompts(spec)
    prompts = sources.kept
    check_request_count(spec, prompts.height)  # before a request list is built
    gold = read_gold(spec)  # a bad gold file fails before generation is paid for
    counts = {"sources": _counts(sources.kept.height + sources.dropped.height, sources)}
    runner.done("sources")
    dropped, failed, conversation = [sources.dropped], {}, None
    if spec.generate.turns > 1:  # continue each prompt into a conversation first
        def run_simulate():
            result, asked = simulate(prompts, spec.generate, ctx)
            return result, {**asked, "counts": _counts(prompts.height, result),
                            "incomplete": _incomplete(result) or bool(asked["errors"])}

        simulated, extras = runner.stage("simulate", [prompts], rollout_config(spec.generate), run_simulate)
        counts["simulate"] = extras["counts"]
        failed["simulate"] = _failures("simulate", pl.Series(extras["errors"], dtype=pl.String), extras["requests"],
                                       runner)
        conversation = {"turns": spec.generate.turns, "assistant": extras["assistant"],
                        "user_simulator": extras["user_simulator"]}
        prompts = simulated.kept
        dropped.append(simulated.dropped)
    runner.done("simulate")
    n_generated = prompts.height * spec.generate.n * len(generators(spec.generate))

    generated_config = spec.generate.model_dump(mode="json", exclude={"turns", "user_simulator"})  # in the prompts
    generated, extras = runner.stage(
        "generate", [prompts], generated_config,
        lambda: (result := generate(prompts, spec.generate, ctx),
                 {"counts": _counts(n_generated, result), "incomplete": _incomplete(result)}))
    counts["generate"] = extras["counts"]
    generation_failed = generated.dropped.filter(pl.col("reason") == "generation_failed")["detail"]
    failed["generate"] = _failures("generate", generation_failed, n_generated, runner)

    judge_config = {"judges": [j.model_dump(mode="json") for j in spec.judges], "panel": spec.panel.inconsistent,
                    "gold": spec.gold.model_dump(mode="json") if spec.gold else None}

    def run_judge():
        result = judge(generated.kept, spec.judges, ctx, prompts=prompts, gold=gold)
        side = {"counts": _judge_counts(result), "incomplete": _incomplete(result)}
        if ctx.artifacts.get("scores"):
            side["scores"] = pl.concat(ctx.artifacts.pop("scores"))
        return result, side

    judged, judged_extras = runner.stage("judge", [generated.kept, prompts] + ([gold] if gold is not None else []),
                                         judge_config, run_judge)
    counts["judge"] = judged_extras["counts"]
    unanswered = judged.kept.filter(pl.col("raw").is_null())["error"]  # an unreadable answer is not a failed request
    failed["judge"] = _failures("judge", unanswered, judged.kept.height, runner)
    # computed from the judgments on every run, so a judge stage saved by an older version gets today's figures
    judging = judge_report(judged.kept, spec.panel.inconsistent, spec.gold)
    if "scores" in judged_extras:  # reward models: the share of inputs cut to max_length
        from prefdata.judge.reward import truncation

        for name, figure in truncation(judged_extras["scores"]).items():
            judging["judges"][name]["truncated"] = figure
    voters = [judge_name(j) for j in spec.judges if judge_name(j) not in judging["dropped_judges"]]
    if not voters:
        raise PrefdataError(f"every judge scored below gold.min_accuracy ({spec.gold.min_accuracy})")

    scales = {judge_name(j): (j.rubric.scale if j.kind == "pointwise" else 10) for j in spec.judges}
    paired, extras = runner.stage(
        "pair", [judged.kept, generated.kept, prompts], {"panel": spec.panel.model_dump(), "voters": voters},
        lambda: (result := pair(judged.kept, spec.panel, ctx, candidates=generated.kept, prompts=prompts,
                                scales=scales, judges=voters), {"counts": _counts(counts["judge"]["kept"], result)}))
    counts["pair"] = extras["counts"]
    judge_dropped = judged.dropped.filter(~pl.col("prompt_id").str.starts_with("gold:"))
    tables = {"candidates": generated.kept, "judgments": judged.kept}
    if "scores" in judged_extras:
        tables["scores"] = judged_extras["scores"]
    return _Flow(paired.kept, [*dropped, generated.dropped, judge_dropped, paired.dropped], counts, tables,
                 judging, {stage: f for stage, f in failed.items() if f["failed"]}, sources=sources.mix,
                 conversation=conversation)


def _curate_only(spec: Spec, runner: Runner) -> _Flow:
    sources = read_pairs(spec)
    counts = {"sources": _counts(sources.kept.height + sources.dropped.height, sources)}
    runner.done("sources")
    return _Flow(sources.kept, [sources.dropped], counts, {}, {}, sources=sources.mix)


def _step_counts(data: pl.DataFrame, step, result: schema.StageResult) -> dict:
    counts = _counts(data.height, result)
    if getattr(step, "min_confidence", None) is not None:  # kept for want of a confidence: said, never silent
        from prefdata.curate.filters import unrated

        counts["kept_without_confidence"] = unrated(result.kept)
    if step.step == "pii":  # what was found per entity type: the card's PII section
        from prefdata.curate.pii import figures

        counts["pii"] = figures(step, result)
    return counts


def _curate(flow: _Flow, spec: Spec, ctx: Context, runner: Runner) -> None:
    for index, step in enumerate(spec.curate):
        name = step.step if step.step not in flow.counts else f"{step.step}_{index}"
        data = flow.data
        curated, extras = runner.stage(
            f"curate.{index}.{step.step}", [data], step.model_dump(mode="json"),
            lambda data=data, step=step: (result := run_step(data, step, ctx),
                                          {"counts": _step_counts(data, step, result)}),
            group="curate")
        flow.counts[name] = extras["counts"]
        flow.data = curated.kept
        flow.dropped.append(curated.dropped)
    runner.done("curate")


def _source_rows(flow: _Flow, spec: Spec) -> dict:
    """What each spec source gave (rows read, taken by its limit or weight), and the rows of the final data by
    their `source` value. Paths as the spec shows them: ${ENV} values and URL credentials stay out."""
    final = flow.data.group_by("source").len().sort("source") if "source" in flow.data.columns else None
    return {"read": [{**s, "path": spec.shown(s["path"])} for s in flow.sources],
            "in_data": dict(final.iter_rows()) if final is not None else {}}


def _check_review_log(out: Path) -> None:
    """A person's decision log in the folder is read before anything runs: a bad line stops the build now."""
    from prefdata.review import log

    log.read(log.log_path(out))


def _review(flow: _Flow, spec: Spec, out: Path, runner: Runner) -> None:
    """The decisions a person made in `prefdata review OUT` (OUT/review.jsonl), applied after curation: a new
    decision re-runs this stage and validation only."""
    from prefdata.curate.config import HumanReviewConfig
    from prefdata.review import apply, log

    path = log.log_path(out)
    explicit = {Path(step.file).resolve() for step in spec.curate if step.step == "human_review"}
    if path.is_file() and path.resolve() not in explicit:  # a spec step already applying this log: not twice
        data, config = flow.data, HumanReviewConfig(file=str(path))
        reviewed, extras = runner.stage(
            "review", [data], {"log": log.digest(path)},
            lambda: (result := run_step(data, config), {"counts": _counts(data.height, result)}))
        flow.counts["human_review"] = extras["counts"]
        flow.data = reviewed.kept
        flow.dropped.append(reviewed.dropped)
        flow.review = {"log": log.digest(path), **apply.summary(data, log.read(path),
                                                               flow.tables.get("judgments"),
                                                               flow.tables.get("candidates"))}
    runner.done("review")


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
    _check_review_log(out)
    from prefdata.backends.cost import Meter, price_table

    runner = Runner(out / ".run", fresh=fresh, start=start, until=until)
    skipped = {"simulate", "generate", "judge", "pair"} & {start, until}
    if spec.generate is None and skipped:
        raise PrefdataError(f"this spec has no {min(skipped)} stage (generate: null): --from and --until take "
                            "sources, curate or validate")
    cache = RequestCache(cache_file)
    meter = Meter(price_table({m: p.model_dump() for m, p in spec.prices.items()}), spec.max_cost)
    ctx = Context(cache=cache, read_cache=use_cache, quiet=quiet, meter=meter)
    try:
        flow = _curate_only(spec, runner) if spec.generate is None else _generate_judge_pair(spec, ctx, runner)
        _curate(flow, spec, ctx, runner)
        _review(flow, spec, out, runner)
    except StageSkipped as stop:
        return BuildResult(runner.folder, 0, 0, {"ran": runner.ran, "reused": runner.reused}, str(stop))
    finally:
        cache.close()
    return _write(spec, out, flow, ctx, runner)


def _validate(out: Path, spec: Spec, review: dict | None):
    """The validate stage: the catalogue over the written data, and the stamp beside it (naming the decision
    log it applied: a later decision makes the stamp stale)."""
    from prefdata.validators.api import validate

    return validate(out, spec=spec.model_dump(mode="json"), stamp=True, review_log=review and review["log"])


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


def _write(spec: Spec, out: Path, flow: _Flow, ctx: Context, runner: Runner) -> BuildResult:
    examples = _best_of_n(flow.data, spec)
    out.mkdir(parents=True, exist_ok=True)
    dropped = pl.concat(flow.dropped, how="vertical_relaxed")
    template = chat_template(spec)
    write_table(flow.data, out / "data.parquet", form=spec.output.form, chat_template=template)
    splits = write_splits(flow.data, out, spec.output.form, chat_template=template)
    dropped.write_parquet(out / "dropped.parquet")
    for name, table in flow.tables.items():
        table.write_parquet(out / f"{name}.parquet")
    sft = _write_sft(examples, spec, out)
    report = _validate(out, spec, flow.review)
    manifest = {
        "name": spec.shown(spec.name),  # ${ENV} values and URL credentials stay out of written files
        "rows": flow.data.height,
        "fingerprint": fingerprint(flow.data),
        "counts": flow.counts,
        "dropped": dict(sorted(dropped.group_by("reason").len().iter_rows())),
        "judging": flow.judging,
        "validation": {"passed": report.passed,
                       "checks": [{k: c.as_dict()[k] for k in ("name", "severity", "passed", "skipped", "value",
                                                               "message")} for c in report.checks]},
        "stages": {"ran": runner.ran, "reused": runner.reused},
        "tokens": ctx.tokens,
        "cost": ctx.meter.summary(),  # this run's paid requests; cache hits are free
        "failed_requests": flow.failed,  # per stage; those stages are not marked finished
        "review": flow.review,
        "sft": sft,
        "sources": _source_rows(flow, spec),
        **({"conversation": flow.conversation} if flow.conversation else {}),  # multi-turn builds only
        "cache": {"hits": ctx.cache.hits, "misses": ctx.cache.misses} if ctx.cache else None,
        "spec": spec.public(),  # ${ENV} values stay out of written files
        "versions": _versions(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n")
    plots = write_plots(flow.data, out)
    written = {"data.parquet", "dropped.parquet", "manifest.json", "validation.json", "README.md", *plots,
               *(f"{name}.parquet" for name in flow.tables), *(SFT_FILES if sft else ()),
               *(["data"] if "data" in {Path(p).parts[0] for p in splits.values()} else [])}
    removed = remove_stale(out, BUILD_FILES, written, keep=(".run", "review.jsonl"))  # a person's work stays
    (out / "README.md").write_text(render_card(spec, flow.data, manifest, plots, splits), encoding="utf-8")
    failed = [f"{c.name} ({c.message})" for c in report.checks if c.severity == "error" and not c.passed]
    return BuildResult(out, flow.data.height, dropped.height, manifest, validation_passed=report.passed,
                       failed_requests=flow.failed, failed_checks=failed, removed=removed)
