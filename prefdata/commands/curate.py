"""`prefdata dedupe | filter | pii | length-bias | split`: thin skins over `prefdata.curate`.

Each command's step options are generated from its steps' config models (`prefdata.commands.options`), so the
spec's `curate:` items and these commands take the same settings with the same defaults and help. Only typer and
pydantic at import time (polars loads inside the commands), so `prefdata --help` stays fast.
Each command can print a JSON summary: rows_in, rows_out, dropped (by reason).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from prefdata import strict_json
from prefdata.commands.options import Configs, Group, with_options
from prefdata.curate.config import (BalanceConfig, DecontaminateConfig, DedupeConfig, FilterConfig,
                                    NearDedupeConfig, PiiConfig, SemanticDedupeConfig, SplitConfig)

FORMAT = typer.Option(None, "--format", "-f", help="Input format (detected when omitted).")
AS_JSON = typer.Option(False, "--json", help="Print a JSON summary: rows_in, rows_out, dropped by reason.")
ON_ERROR = typer.Option("raise", "--on-error", help="raise: stop at the first bad record (exit 2). skip: set it "
                        "aside with the dropped rows and go on.")
DROPPED = typer.Option(None, "--dropped", help="Where dropped rows go (default: OUT's name + .dropped.jsonl).")
STREAMED = typer.Option(False, "--streamed", help="Data larger than memory: read the Parquet input in chunks "
                        "(twice), keep only small columns and write OUT (Parquet) chunk by chunk; the same rows kept "
                        "and dropped as in memory. Dropped rows go to OUT's name + .dropped.parquet.")


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


def streamed(source: str, steps: list, output: Path, dropped_to: Optional[Path], as_json: bool) -> None:
    """Run the steps out of core (`prefdata.curate.streamed`), with a progress line per chunk."""
    import pyarrow.parquet as pq

    from prefdata.curate.streamed import curate_streamed, parquet_files
    from prefdata.errors import PrefdataError
    from prefdata.progress import progress

    if output.suffix != ".parquet":
        raise PrefdataError(f"{output}: --streamed writes Parquet (name the output .parquet)")
    where = dropped_to or output.with_name(output.name.removesuffix(".parquet") + ".dropped.parquet")
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in parquet_files(source))
    with progress("curate (streamed, 2 passes)", 2 * rows) as advance:
        figures = curate_streamed(source, steps, output, where, on_chunk=advance)
    figures = {**figures, "output": str(output), "dropped_file": str(where) if sum(figures["dropped"].values())
               else None}
    if as_json:
        typer.echo(strict_json.dumps(figures))
        return
    reasons = ", ".join(f"{n} {reason}" for reason, n in figures["dropped"].items()) or "none"
    typer.echo(f"{figures['rows_in']} rows in: {figures['rows_out']} written to {output}, "
               f"{sum(figures['dropped'].values())} dropped ({reasons})", err=True)


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


@with_options(Group(DedupeConfig), Group(NearDedupeConfig, when="--near"),
              Group(SemanticDedupeConfig, prefix="semantic", names={"keep": "--keep"}, when="--semantic"))
def dedupe(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    near: bool = typer.Option(False, "--near", help="Also remove near duplicates (MinHash LSH)."),
    semantic: bool = typer.Option(False, "--semantic", help="Also remove duplicates by meaning (sentence "
                                  "embeddings, all-MiniLM-L6-v2 on the CPU; extra 'semantic')."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
    out_of_core: bool = STREAMED,
    configs: Configs = None,
) -> None:
    """Remove exact duplicates (normalised text), with --near near duplicates (MinHash) and with --semantic
    duplicates by meaning (sentence embeddings). Rows in = out + dropped."""
    steps = [configs.make(DedupeConfig)]
    if near:
        steps.append(configs.make(NearDedupeConfig))
    if out_of_core:
        if semantic:
            from prefdata.errors import PrefdataError

            raise PrefdataError("--streamed runs exact and near dedupe; --semantic needs the data in memory")
        return streamed(source, steps, output, dropped_to, as_json)
    if semantic:
        steps.append(configs.make(SemanticDedupeConfig))
        from prefdata.curate.semantic_dedupe import require

        require(steps[-1].model)  # before reading: a missing extra or model folder is one line
    result = read_pairs(source, format, on_error)
    kept, dropped = run_steps(result, steps)
    finish(result, kept, dropped, output, dropped_to, as_json)


@with_options(Group(FilterConfig), Group(DecontaminateConfig, prefix="eval", names={"eval_sets": "--decontaminate"},
                                       paths=("eval_sets",), when="--decontaminate"))
def filter_(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
    out_of_core: bool = STREAMED,
    configs: Configs = None,
) -> None:
    """Keep pairs within score-margin, agreement and length bounds, in the given languages, and free of evaluation
    n-grams (--decontaminate FILE, repeatable)."""
    steps = [configs.make(FilterConfig)]
    if configs.value(DecontaminateConfig, "eval_sets"):
        steps.append(configs.make(DecontaminateConfig))
    if out_of_core:
        return streamed(source, steps, output, dropped_to, as_json)
    result = read_pairs(source, format, on_error)
    kept, dropped = run_steps(result, steps)
    extra = {}
    if steps[0].min_confidence is not None:
        from prefdata.curate.filters import unrated

        extra["kept_without_confidence"] = unrated(kept)
    finish(result, kept, dropped, output, dropped_to, as_json, **extra)


@with_options(Group(PiiConfig))
def pii(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
    configs: Configs = None,
) -> None:
    """Find e-mail addresses, phone, credit-card and IBAN numbers and IP addresses (presidio-analyzer), and redact
    them, drop their pairs, or flag them. Needs the pii extra. Rows in = out + dropped."""
    import polars as pl

    from prefdata.curate import run_step
    from prefdata.curate.pii import figures

    config = configs.make(PiiConfig)
    result = read_pairs(source, format, on_error)
    step = run_step(result.frame, config)
    found = figures(config, step)
    if not as_json:
        listed = ", ".join(f"{name} {f['spans']} in {f['pairs']} pairs" for name, f in found["entities"].items())
        typer.echo(f"PII ({config.action}): {listed or 'none found'}"
                   + (f"; {found['unscanned']} pairs not scanned" if found["unscanned"] else ""), err=True)
    finish(result, step.kept, pl.concat([result.dropped, step.dropped], how="diagonal_relaxed"), output, dropped_to,
           as_json, pii=found)


@with_options(Group(BalanceConfig))
def length_bias(
    data: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    balance: Optional[Path] = typer.Option(None, "--balance", help="Write the largest subset whose chosen-longer "
                                           "share is within target ± tolerance here."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
    out_of_core: bool = typer.Option(False, "--streamed", help="Data larger than memory: read the Parquet input "
                                     "in chunks, keeping two lengths per pair (not with --balance)."),
    configs: Configs = None,
) -> None:
    """Length bias: chosen-longer share, correlation, logistic coefficient with a 95% interval; with --balance, the
    largest subset whose share is within --target ± --tolerance."""
    from prefdata.curate.length_bias import length_bias_report

    config = configs.make(BalanceConfig)  # checked even without --balance: a bad --unit is one line
    unit, tokenizer = config.unit, config.tokenizer
    if out_of_core:
        return _streamed_bias(data, balance, unit, tokenizer, as_json)
    result = read_pairs(data, format, on_error)
    report = length_bias_report(result.frame, unit, tokenizer)
    if balance is None:
        kept, dropped = result.frame, result.dropped
        figures = {**summary(result, kept, dropped), "length_bias": report}
    else:
        kept, dropped = run_steps(result, [config])
        after = length_bias_report(kept, unit, tokenizer)
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


def _streamed_bias(data: str, balance: Optional[Path], unit: str, tokenizer: Optional[str], as_json: bool) -> None:
    from prefdata.curate.streamed import length_bias_streamed
    from prefdata.errors import PrefdataError

    if balance is not None:
        raise PrefdataError("--balance picks pairs over the whole table: run it without --streamed")
    report = length_bias_streamed(data, unit, tokenizer)
    figures = {"rows_in": report["pairs"], "length_bias": _rounded(report)}
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


@with_options(Group(SplitConfig))
def split(
    source: str = typer.Argument(..., help="Pairs: file, folder or Hub id."),
    outdir: Path = typer.Argument(..., help="Folder for train and test files."),
    suffix: str = typer.Option("parquet", "--as", help="File type: parquet or jsonl."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
    configs: Configs = None,
) -> None:
    """Deterministic train/test split grouped by prompt (no prompt in both), optionally stratified."""
    from prefdata.curate.split import train_test
    from prefdata.io import write_table

    config = configs.make(SplitConfig)
    group = config.group
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
