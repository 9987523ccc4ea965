"""A build as a list of stages (`prefdata.stage`): which stages a spec has, what each reads and writes.

Tables of the flow: `prompts` (sources, then simulate), `gold` (known-answer pairs, when the spec has them),
`candidates` (generate), `judgments` and `scores` (judge), `data` (pair, or the sources of a build without
generation, then every curation step and the review). The validate stage writes the dataset files and checks
them; build.py writes the manifest and the card from the flow.
"""

from __future__ import annotations

from math import comb
from pathlib import Path
from typing import Any, Callable

import polars as pl

from prefdata.context import Context
from prefdata.errors import PrefdataError
from prefdata.spec import Spec, judge_name
from prefdata.stage import Flow, Output, Stage

RETRYABLE = ("generation_failed", "max_cost_reached")
PUBLISHED = ("candidates", "judgments", "scores")  # side tables written beside data.parquet


class RequestsFailed(PrefdataError):
    """Every request of a stage failed (a wrong base_url, key or model): nothing is left to build on."""

    exit_code = 1


def stages(spec: Spec, ctx: Context, out: Path, validate: Callable[[Flow], Output]) -> list[Stage]:
    """The build's stages in order; `validate` writes the dataset folder and checks it."""
    found = [_sources(spec)]
    if spec.generate is not None:
        run_folder = out / ".run"  # where a failed request's row and error are kept
        if spec.generate.turns > 1:
            found.append(_simulate(spec, ctx, run_folder))
        found += [_generate(spec, ctx, run_folder), _judge(spec, ctx, run_folder), _pair(spec, ctx)]
    found += [_curate_step(spec, index, ctx) for index in range(len(spec.curate))]
    review = _review(spec, out)
    if review is not None:
        found.append(review)
    found.append(Stage("validate", ("data",), "data", validate, reuse=False))
    return found


def incomplete(result: Any) -> bool:
    """Did requests fail or get refused (max_cost)? Then the stage must run again next time."""
    if "error" in result.kept.columns and result.kept["error"].is_not_null().any():
        return True
    return bool(result.dropped["reason"].is_in(RETRYABLE).any())


def failures(stage: str, errors: pl.Series, requests: int, folder: Path) -> dict:
    """How many of a stage's requests failed, and the first error; raises when all of them did."""
    errors = errors.drop_nulls()
    failed = errors.filter(~errors.str.starts_with("max_cost_reached"))  # refused by the budget, not failed
    found = {"failed": failed.len(), "requests": requests, "first_error": failed[0] if failed.len() else None}
    if requests and failed.len() == requests:
        raise RequestsFailed(f"all {requests} {stage} requests failed, so there is nothing to build on (first error: "
                             f"{found['first_error']}); each failed row and its error is in {folder}; fix the "
                             f"backend (base_url, api_key_env, model) and run the build again")
    return found


def _note_failures(flow: Flow, stage: str, errors: pl.Series, requests: int, folder: Path) -> None:
    found = failures(stage, errors, requests, folder)
    if found["failed"]:
        flow.failed[stage] = found


# -- sources ------------------------------------------------------------------------------------------------

def _sources(spec: Spec) -> Stage:
    from prefdata.preflight import check_request_count
    from prefdata.sources import spec_gold, spec_pairs, spec_prompts

    def run(flow: Flow) -> Output:
        read = spec_pairs(spec) if spec.generate is None else spec_prompts(spec)
        tables = {}
        if spec.generate is not None:
            check_request_count(spec, read.kept.height)  # before a request list is built
            gold = spec_gold(spec)  # a bad gold file fails before generation is paid for
            if gold is not None:
                tables["gold"] = gold
        return Output(read.kept, read.dropped, tables, {"mix": read.mix}, rows_in=read.rows_in)

    # files change between runs and reading them is cheap: never reused
    return Stage("sources", (), "data" if spec.generate is None else "prompts", run, reuse=False)


# -- simulate, generate, judge, pair ------------------------------------------------------------------------

def _simulate(spec: Spec, ctx: Context, folder: Path) -> Stage:
    from prefdata.conversation import rollout_config, simulate

    def run(flow: Flow) -> Output:
        result, asked = simulate(flow.tables["prompts"], spec.generate, ctx)
        return Output(result.kept, result.dropped, facts=asked, incomplete=incomplete(result) or bool(asked["errors"]))

    def after(flow: Flow, output: Output) -> None:
        facts = output.facts
        _note_failures(flow, "simulate", pl.Series(facts["errors"], dtype=pl.String), facts["requests"], folder)
        flow.facts["conversation"] = {"turns": spec.generate.turns, "assistant": facts["assistant"],
                                      "user_simulator": facts["user_simulator"]}

    return Stage("simulate", ("prompts",), "prompts", run, lambda flow: rollout_config(spec.generate), after=after)


def _generate(spec: Spec, ctx: Context, folder: Path) -> Stage:
    from prefdata.generate import generate, generators

    config = spec.generate.model_dump(mode="json", exclude={"turns", "user_simulator"})  # those are in the prompts

    def wanted(flow: Flow) -> int:
        return flow.tables["prompts"].height * spec.generate.n * len(generators(spec.generate))

    def run(flow: Flow) -> Output:
        result = generate(flow.tables["prompts"], spec.generate, ctx)
        return Output(result.kept, result.dropped, incomplete=incomplete(result))

    def after(flow: Flow, output: Output) -> None:
        errors = output.dropped.filter(pl.col("reason") == "generation_failed")["detail"]
        _note_failures(flow, "generate", errors, wanted(flow), folder)

    return Stage("generate", ("prompts",), "candidates", run, lambda flow: config, rows_in=wanted, after=after)


def _comparisons(frame: pl.DataFrame) -> int:
    """Distinct comparisons among judgments (one row per judge and order)."""
    return frame.select("prompt_id", "a_id", "b_id").unique().height


def _judge(spec: Spec, ctx: Context, folder: Path) -> Stage:
    from prefdata.judge.report import judge_report
    from prefdata.judge.stage import judge

    inputs = ("candidates", "prompts", *(("gold",) if spec.gold else ()))
    config = {"judges": [j.model_dump(mode="json") for j in spec.judges], "panel": spec.panel.inconsistent,
              "gold": spec.gold.model_dump(mode="json") if spec.gold else None}

    def wanted(flow: Flow) -> int:  # every two candidates of a prompt, gold items included
        sizes = flow.tables["candidates"].group_by("prompt_id").len()["len"].to_list()
        return sum(comb(n, 2) for n in sizes) + (flow.tables["gold"].height if spec.gold else 0)

    def run(flow: Flow) -> Output:
        output = judge(flow.tables["candidates"], spec.judges, ctx, prompts=flow.tables["prompts"],
                       gold=flow.tables.get("gold"))
        regular = output.kept.filter(~pl.col("gold"))
        output.facts = {"counts": {"judgments": regular.height}}
        output.incomplete = incomplete(output)
        return output

    def after(flow: Flow, output: Output) -> None:
        unanswered = output.kept.filter(pl.col("raw").is_null())["error"]  # unreadable is not a failed request
        _note_failures(flow, "judge", unanswered, output.kept.height, folder)
        # from the judgments on every run, so a judge stage saved by an older version gets today's figures
        judging = judge_report(output.kept, spec.panel.inconsistent, spec.gold)
        if "scores" in output.tables:  # reward models: the share of inputs cut to max_length
            from prefdata.judge.reward import truncation

            for name, figure in truncation(output.tables["scores"]).items():
                judging["judges"][name]["truncated"] = figure
        flow.facts["judging"] = judging
        if not voters(spec, flow):
            raise PrefdataError(f"every judge scored below gold.min_accuracy ({spec.gold.min_accuracy})")

    return Stage("judge", inputs, "judgments", run, lambda flow: config, rows_in=wanted, units=_comparisons,
                 after=after)


def voters(spec: Spec, flow: Flow) -> list[str]:
    """The judges allowed to vote: those the gold items did not drop."""
    dropped = flow.facts["judging"]["dropped_judges"]
    return [judge_name(j) for j in spec.judges if judge_name(j) not in dropped]


def _pair(spec: Spec, ctx: Context) -> Stage:
    from prefdata.pair import pair

    scales = {judge_name(j): (j.rubric.scale if j.kind == "pointwise" else 10) for j in spec.judges}

    def judged(flow: Flow) -> int:  # comparisons decided or dropped here (gold items are the judges' test)
        return _comparisons(flow.tables["judgments"].filter(~pl.col("gold")))

    def run(flow: Flow) -> Output:
        result = pair(flow.tables["judgments"], spec.panel, ctx, candidates=flow.tables["candidates"],
                      prompts=flow.tables["prompts"], scales=scales, judges=voters(spec, flow))
        return Output(result.kept, result.dropped)

    return Stage("pair", ("judgments", "candidates", "prompts"), "data", run,
                 lambda flow: {"panel": spec.panel.model_dump(), "voters": voters(spec, flow)}, rows_in=judged)


# -- curate, review -----------------------------------------------------------------------------------------

def _curate_step(spec: Spec, index: int, ctx: Context) -> Stage:
    from prefdata.curate import run_step

    step = spec.curate[index]
    earlier = [s.step for s in spec.curate[:index]]
    taken = {"sources", "simulate", "generate", "judge", "pair", *earlier}
    label = step.step if step.step not in taken else f"{step.step}_{index}"

    def run(flow: Flow) -> Output:
        result = run_step(flow.tables["data"], step, ctx)
        return Output(result.kept, result.dropped, facts={"counts": step_figures(step, result)})

    return Stage(f"curate.{index}.{step.step}", ("data",), "data", run, lambda flow: step.model_dump(mode="json"),
                 group="curate", label=label)


def step_figures(step: Any, result: Any) -> dict:
    """What a step reports beside its rows (said, never silent)."""
    figures = {}
    if getattr(step, "min_confidence", None) is not None:  # kept for want of a confidence
        from prefdata.curate.filters import unrated

        figures["kept_without_confidence"] = unrated(result.kept)
    if step.step == "pii":  # what was found per entity type: the card's PII section
        from prefdata.curate.pii import figures as pii_figures

        figures["pii"] = pii_figures(step, result)
    return figures


def _review(spec: Spec, out: Path) -> Stage | None:
    """The decisions a person made in `prefdata review OUT` (OUT/review.jsonl), applied after curation, unless a
    spec step already applies that log: a new decision re-runs this stage and validation only."""
    from prefdata.curate import run_step
    from prefdata.curate.config import HumanReviewConfig
    from prefdata.review import apply, log

    path = log.log_path(out)
    explicit = {Path(step.file).resolve() for step in spec.curate if step.step == "human_review"}
    if not path.is_file() or path.resolve() in explicit:
        return None
    config = HumanReviewConfig(file=str(path))

    def run(flow: Flow) -> Output:
        result = run_step(flow.tables["data"], config)
        return Output(result.kept, result.dropped)

    def after(flow: Flow, output: Output) -> None:  # the flow still holds the stage's input here
        flow.facts["review"] = {"log": log.digest(path), **apply.summary(
            flow.tables["data"], log.read(path), flow.tables.get("judgments"), flow.tables.get("candidates"))}

    return Stage("review", ("data",), "data", run, lambda flow: {"log": log.digest(path)}, label="human_review",
                 after=after)


def check_review_log(out: Path) -> None:
    """A person's decision log in the folder is read before anything runs: a bad line stops the build now."""
    from prefdata.review import log

    log.read(log.log_path(out))

