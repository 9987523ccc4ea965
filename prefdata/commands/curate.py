"""`prefdata dedupe | filter | pii | length-bias | split`: thin skins over `prefdata.curate`.

Only typer at import time (polars loads inside the commands), so `prefdata --help` stays fast.
Each command can print a JSON summary: rows_in, rows_out, dropped (by reason).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from prefdata import strict_json

FORMAT = typer.Option(None, "--format", "-f", help="Input format (detected when omitted).")
AS_JSON = typer.Option(False, "--json", help="Print a JSON summary: rows_in, rows_out, dropped by reason.")
ON_ERROR = typer.Option("raise", "--on-error", help="raise: stop at the first bad record (exit 2). skip: set it "
                        "aside with the dropped rows and go on.")
DROPPED = typer.Option(None, "--dropped", help="Where dropped rows go (default: OUT's name + .dropped.jsonl).")


class Keep(str, Enum):
    first = "first"
    highest_margin = "highest_margin"


class Level(str, Enum):
    pair = "pair"
    prompt = "prompt"


class Unit(str, Enum):
    auto = "auto"
    words = "words"
    chars = "chars"


class LengthUnit(str, Enum):
    chars = "chars"
    words = "words"
    tokens = "tokens"


class Verify(str, Enum):
    exact = "exact"
    signature = "signature"
    none = "none"


def make_config(cls, options: Optional[dict] = None, **values):
    """`cls(**values)`, with a pydantic ValidationError turned into one line naming the option
    (`options` maps a field to its option name where they differ)."""
    from pydantic import ValidationError

    from prefdata.errors import PrefdataError

    try:
        return cls(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else ""
            name = (options or {}).get(field, "--" + field.replace("_", "-")) if field else "options"
            problems.append(f"{name}: {error['msg']}")
        raise PrefdataError("; ".join(problems)) from None


def read_pairs(source: str, format: Optional[str], on_error: str = "raise"):
    from prefdata.errors import InputError, PrefdataError

    if on_error not in ("raise", "skip"):
        raise PrefdataError(f"--on-error must be raise or skip, not {on_error!r}")
    from prefdata.io import read_dataset

    result = read_dataset(source, format=format, on_error=on_error)
    if result.kind != "pairwise":
        raise InputError(source, f"curation needs preference pairs; this is {result.kind} data ({result.format})")
    return result


def run_steps(result, configs: list, ctx=None):
    """Run step configs in order; dropped rows of every step (and of the reader) are gathered."""
    import polars as pl

    from prefdata.curate import run_steps as curate

    kept, dropped, _ = curate(result.frame, configs, ctx)
    return kept, pl.concat([result.dropped, dropped], how="diagonal_relaxed")


def summary(result, kept, dropped, **extra) -> dict:
    counts = dropped.group_by("reason").len().sort("reason")
    return {"rows_in": result.rows_in, "rows_out": kept.height,
            "dropped": dict(zip(counts["reason"].to_list(), counts["len"].to_list())), **extra}


def dropped_path(output: Path, given: Optional[Path]) -> Path:
    return given or output.with_name(output.name.removesuffix(output.suffix) + ".dropped.jsonl")


def write_dropped(dropped, output: Path, dropped_to: Optional[Path]) -> Optional[Path]:
    """Write the dropped rows (with their reasons) next to `output`, or to `dropped_to`; None when there are none."""
    from prefdata.io import write_table

    if not dropped.height:
        return None
    where = dropped_path(output, dropped_to)
    write_table(dropped, where)
    return where


def write_kept(kept, dropped, output: Path, dropped_to: Optional[Path]) -> Optional[Path]:
    """Write the kept rows to `output` and the dropped ones beside them; returns where the dropped went."""
    from prefdata.io import write_table

    write_table(kept, output)
    return write_dropped(dropped, output, dropped_to)


def finish(result, kept, dropped, output: Path, dropped_to: Optional[Path], as_json: bool, **extra) -> None:
    where = write_kept(kept, dropped, output, dropped_to)
    figures = summary(result, kept, dropped, output=str(output), dropped_file=str(where) if where else None,
                      **extra)
    if as_json:
        typer.echo(strict_json.dumps(figures))
        return
    reasons = ", ".join(f"{n} {reason}" for reason, n in figures["dropped"].items()) or "none"
    typer.echo(f"{figures['rows_in']} rows in: {figures['rows_out']} written to {output}, "
               f"{dropped.height} dropped ({reasons})" + (f" in {where}" if dropped.height else ""), err=True)
    if extra.get("kept_without_confidence"):
        typer.echo(f"{extra['kept_without_confidence']} rows have no confidence (not judged by prefdata, or their "
                   f"judges' backend gives no token probabilities): kept, not tested against --min-confidence",
                   err=True)


def dedupe(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    level: Level = typer.Option(Level.pair, help="pair: same (prompt, chosen, rejected). prompt: one pair per prompt."),
    keep: Keep = typer.Option(Keep.first, help="Which duplicate survives."),
    near: bool = typer.Option(False, "--near", help="Also remove near duplicates (MinHash LSH)."),
    scope: Level = typer.Option(Level.pair, help="Near duplicates of whole pairs, or of prompts."),
    threshold: float = typer.Option(0.8, help="Jaccard similarity from which rows are near duplicates."),
    ngram: int = typer.Option(5, help="Shingle length."),
    unit: Unit = typer.Option(Unit.auto, help="Shingle unit; auto: characters for CJK/Thai text, else words."),
    num_perm: int = typer.Option(128, help="MinHash signature length."),
    verify: Verify = typer.Option(Verify.exact, help="Check LSH candidates by exact Jaccard, estimate, or not."),
    semantic: bool = typer.Option(False, "--semantic", help="Also remove duplicates by meaning (sentence "
                                  "embeddings, all-MiniLM-L6-v2 on the CPU; extra 'semantic')."),
    semantic_scope: Level = typer.Option(Level.prompt, help="Semantic duplicates of prompts (their user turns), or "
                                         "of whole pairs (prompt, chosen and rejected each similar)."),
    semantic_threshold: float = typer.Option(0.9, help="Cosine similarity from which rows are semantic duplicates."),
    semantic_model: Optional[str] = typer.Option(None, help="A local sentence-transformers model folder (default: "
                                                 "all-MiniLM-L6-v2 from the extra's wheel)."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
) -> None:
    """Remove exact duplicates (normalised text), with --near near duplicates (MinHash) and with --semantic
    duplicates by meaning (sentence embeddings). Rows in = out + dropped."""
    from prefdata.curate.config import DedupeConfig, NearDedupeConfig, SemanticDedupeConfig

    configs = [make_config(DedupeConfig, level=level.value, keep=keep.value)]
    if near:
        configs.append(make_config(NearDedupeConfig, scope=scope.value, threshold=threshold, ngram=ngram,
                                   unit=unit.value, num_perm=num_perm, verify=verify.value, keep=keep.value))
    if semantic:
        configs.append(make_config(SemanticDedupeConfig, {"scope": "--semantic-scope",
                                                          "threshold": "--semantic-threshold",
                                                          "model": "--semantic-model"},
                                   scope=semantic_scope.value, threshold=semantic_threshold, model=semantic_model,
                                   keep=keep.value))
        from prefdata.curate.semantic_dedupe import require

        require(semantic_model)  # before reading: a missing extra or model folder is one line
    result = read_pairs(source, format, on_error)
    kept, dropped = run_steps(result, configs)
    finish(result, kept, dropped, output, dropped_to, as_json)


def filter_(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    min_margin: Optional[float] = typer.Option(None, help="Drop pairs whose score margin is below this (or missing)."),
    min_agreement: Optional[float] = typer.Option(None, help="Drop pairs with less judge agreement (0..1)."),
    min_confidence: Optional[float] = typer.Option(None, help="Drop pairs whose judges' confidence (0..1, from token "
                                                   "probabilities) is below this; pairs without one are kept and "
                                                   "counted."),
    min_length: Optional[int] = typer.Option(None, help="Shortest chosen/rejected answer allowed."),
    max_length: Optional[int] = typer.Option(None, help="Longest chosen/rejected answer allowed."),
    max_prompt_length: Optional[int] = typer.Option(None, help="Longest prompt (all turns) allowed."),
    max_length_ratio: Optional[float] = typer.Option(None, help="Largest longer/shorter answer length ratio."),
    language: Optional[str] = typer.Option(None, help="Keep pairs whose prompt is in these languages, ISO 639-1 "
                                           "codes separated by commas (en,de); adds a `language` column. Needs "
                                           "the language extra (lingua)."),
    unit: LengthUnit = typer.Option(LengthUnit.chars, help="Unit of the length bounds."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer for --unit tokens (default: the embedded model's)."),
    decontaminate: list[str] = typer.Option([], "--decontaminate", help="Evaluation set (file or Hub id) whose "
                                            "n-grams prompts must not share; repeatable."),
    eval_field: Optional[str] = typer.Option(None, help="Column of the evaluation text (default: every string)."),
    eval_ngram: int = typer.Option(13, help="n-gram length for --decontaminate."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
) -> None:
    """Keep pairs within score-margin, agreement and length bounds, in the given languages, and free of evaluation
    n-grams."""
    from prefdata.curate.config import DecontaminateConfig, FilterConfig

    configs: list = [make_config(FilterConfig, min_margin=min_margin, min_agreement=min_agreement,
                                 min_confidence=min_confidence, min_length=min_length, max_length=max_length,
                                 max_prompt_length=max_prompt_length,
                                 max_length_ratio=max_length_ratio, unit=unit.value, tokenizer=tokenizer,
                                 language=language.split(",") if language is not None else None)]
    if decontaminate:
        configs.append(make_config(DecontaminateConfig, {"eval_sets": "--decontaminate", "field": "--eval-field",
                                                         "ngram": "--eval-ngram"},
                                   eval_sets=decontaminate, field=eval_field, ngram=eval_ngram))
    result = read_pairs(source, format, on_error)
    kept, dropped = run_steps(result, configs)
    extra = {}
    if min_confidence is not None:
        from prefdata.curate.filters import unrated

        extra["kept_without_confidence"] = unrated(kept)
    finish(result, kept, dropped, output, dropped_to, as_json, **extra)


def pii(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    action: str = typer.Option("redact", help="redact: replace each find with <ENTITY>. drop: remove pairs holding "
                               "any. flag: keep all. Each adds a `pii` column of what was found (entity, field, "
                               "turn, offsets; never the text)."),
    entities: Optional[str] = typer.Option(None, help="What to look for, separated by commas: EMAIL, PHONE, CARD, "
                                           "IBAN, IP (or presidio's EMAIL_ADDRESS...; default: all five)."),
    fields: str = typer.Option("prompt,chosen,rejected", help="Columns whose turns are scanned, separated by commas."),
    score_threshold: float = typer.Option(0.3, help="presidio's lowest score kept."),
    max_chars: int = typer.Option(100_000, help="Longer texts are not scanned: their pairs are dropped as "
                                  "pii_unscanned (flag: kept with a null pii)."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
) -> None:
    """Find e-mail addresses, phone, credit-card and IBAN numbers and IP addresses (presidio-analyzer), and redact
    them, drop their pairs, or flag them. Needs the pii extra. Rows in = out + dropped."""
    import polars as pl

    from prefdata.curate import run_step
    from prefdata.curate.config import PiiConfig
    from prefdata.curate.pii import figures

    options = {"entities": "--entities", "fields": "--fields", "score_threshold": "--score-threshold"}
    config = make_config(PiiConfig, options, action=action, fields=fields.split(","), score_threshold=score_threshold,
                         max_chars=max_chars, **({"entities": entities.split(",")} if entities is not None else {}))
    result = read_pairs(source, format, on_error)
    step = run_step(result.frame, config)
    found = figures(config, step)
    if not as_json:
        listed = ", ".join(f"{name} {f['spans']} in {f['pairs']} pairs" for name, f in found["entities"].items())
        typer.echo(f"PII ({config.action}): {listed or 'none found'}"
                   + (f"; {found['unscanned']} pairs not scanned" if found["unscanned"] else ""), err=True)
    finish(result, step.kept, pl.concat([result.dropped, step.dropped], how="diagonal_relaxed"), output, dropped_to,
           as_json, pii=found)


def length_bias(
    data: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    unit: LengthUnit = typer.Option(LengthUnit.chars, help="Length unit."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer for --unit tokens (default: the embedded model's)."),
    balance: Optional[Path] = typer.Option(None, "--balance", help="Write the largest subset whose chosen-longer "
                                           "share is within target ± tolerance here."),
    target: float = typer.Option(0.5, help="Wanted chosen-longer share (with --balance)."),
    tolerance: float = typer.Option(0.05, help="Accepted distance from the target (with --balance)."),
    seed: int = typer.Option(0, help="Which pairs --balance drops (a hash of pair_id and this)."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
) -> None:
    """Length bias: chosen-longer share, correlation, logistic coefficient with a 95% interval."""
    from prefdata.curate.config import BalanceConfig
    from prefdata.curate.length_bias import length_bias_report

    config = None if balance is None else make_config(BalanceConfig, target=target, tolerance=tolerance,
                                                      unit=unit.value, tokenizer=tokenizer, seed=seed)
    result = read_pairs(data, format, on_error)
    report = length_bias_report(result.frame, unit.value, tokenizer)
    if config is None:
        kept, dropped = result.frame, result.dropped
        figures = {**summary(result, kept, dropped), "length_bias": report}
    else:
        kept, dropped = run_steps(result, [config])
        after = length_bias_report(kept, unit.value, tokenizer)
        where = write_kept(kept, dropped, balance, dropped_to)
        figures = {**summary(result, kept, dropped, output=str(balance), dropped_file=str(where) if where else None),
                   "length_bias": report, "balanced": after}
    figures["length_bias"] = _rounded(figures["length_bias"])
    if "balanced" in figures:
        figures["balanced"] = _rounded(figures["balanced"])
    if as_json:
        typer.echo(strict_json.dumps(figures))
        return
    _print_bias(data, figures)


def _round(value, digits: int = 4):
    """Four significant digits, as the other figures: raw floats (-0.1735607376167526) are noise."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def _rounded(report: dict | None) -> dict | None:
    return None if report is None else {k: _round(v) for k, v in report.items()}


def _print_bias(data: str, figures: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"length bias of {data}")
    table.add_column("figure")
    table.add_column("data")
    if "balanced" in figures:
        table.add_column("balanced")
    for key, value in figures["length_bias"].items():
        row = [key, json.dumps(value)]
        if "balanced" in figures:
            row.append(json.dumps(figures["balanced"].get(key)))
        table.add_row(*row)
    Console().print(table)
    if "balanced" in figures:
        typer.echo(f"{figures['rows_out']} of {figures['rows_in']} rows written to {figures['output']}", err=True)


def split(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    outdir: Path = typer.Argument(..., help="Folder for train and test files."),
    test_size: float = typer.Option(0.1, help="Share of prompts in the test split."),
    stratify: Optional[str] = typer.Option(None, help="Column to stratify by."),
    group: str = typer.Option("prompt_id", help="Rows sharing this column stay in one split."),
    seed: int = typer.Option(0, help="Changes which prompts go to test."),
    suffix: str = typer.Option("parquet", "--as", help="File type: parquet or jsonl."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
) -> None:
    """Deterministic train/test split grouped by prompt (no prompt in both), optionally stratified."""
    from prefdata.curate.config import SplitConfig
    from prefdata.curate.split import train_test
    from prefdata.io import write_table

    config = make_config(SplitConfig, test_size=test_size, stratify=stratify, group=group, seed=seed)
    result = read_pairs(source, format, on_error)
    parts = train_test(result.frame, config)
    outdir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, frame in parts.items():
        files[name] = {"rows": frame.height, "prompts": frame[group].n_unique(),
                       "path": str(write_table(frame, outdir / f"{name}.{suffix}"))}
    where = write_dropped(result.dropped, outdir, dropped_to)
    kept = result.frame
    figures = {**summary(result, kept, result.dropped, dropped_file=str(where) if where else None), "splits": files}
    if as_json:
        typer.echo(strict_json.dumps(figures))
        return
    typer.echo(", ".join(f"{n}: {f['rows']} rows ({f['prompts']} prompts) in {f['path']}" for n, f in files.items())
               + (f"; {result.dropped.height} set aside in {where}" if where else ""), err=True)


def register(app: typer.Typer) -> None:
    app.command("dedupe")(dedupe)
    app.command("filter")(filter_)
    app.command("pii")(pii)
    app.command("length-bias")(length_bias)
    app.command("split")(split)
