"""`prefdata export DATA OUT --sft`: the best answer per prompt as a supervised fine-tuning set.

Only typer at import time (polars loads inside the command), so `prefdata --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from prefdata import strict_json
from prefdata.commands.curate import AS_JSON, DROPPED, FORMAT, ON_ERROR, read_pairs, write_kept
from prefdata.commands.options import make_config


def export(
    source: str = typer.Argument(..., help="Pairs: a build folder, file, dataset folder or Hub id."),
    output: Path = typer.Argument(..., help="Output: .jsonl, .parquet or a folder."),
    sft: bool = typer.Option(False, "--sft", help="Write the best answer per prompt in TRL's `messages` form "
                             "(SFTTrainer): best-of-n / rejection sampling over the judged pairs."),
    min_score: Optional[float] = typer.Option(None, help="Keep a prompt's best answer only when its judges' mean "
                                              "score (1-10) is at least this."),
    min_margin: Optional[float] = typer.Option(None, help="... and when it beat every answer it met by at least "
                                               "this margin."),
    format: Optional[str] = FORMAT,
    on_error: str = ON_ERROR,
    dropped_to: Optional[Path] = DROPPED,
    as_json: bool = AS_JSON,
) -> None:
    """Export pairs as another kind of training set: --sft, the judges' best answer per prompt."""
    from prefdata.best_of_n import best_of_n
    from prefdata.errors import PrefdataError
    from prefdata.spec import SftSpec

    if not sft:
        raise PrefdataError("say what to export: --sft (the best answer per prompt, for SFTTrainer)")
    config = make_config(SftSpec, min_score=min_score, min_margin=min_margin)
    result = read_pairs(source, format, on_error)
    examples = best_of_n(result.frame, config)
    where = write_kept(examples.kept, result.dropped.vstack(examples.dropped), output, dropped_to)
    reasons = examples.dropped.group_by("reason").len().sort("reason")
    figures = {"pairs_in": result.rows_in, "prompts": examples.kept.height + examples.dropped.height,
               "exported": examples.kept.height, "dropped": dict(reasons.iter_rows()),
               "unreadable_records": result.dropped.height, "output": str(output),
               "dropped_file": str(where) if where else None}
    if as_json:
        typer.echo(strict_json.dumps(figures))
        return
    said = ", ".join(f"{n} {reason}" for reason, n in figures["dropped"].items()) or "none left out"
    typer.echo(f"{figures['pairs_in']} pairs, {figures['prompts']} prompts: {figures['exported']} best answers "
               f"written to {output} ({said})" + (f"; left out in {where}" if where else ""), err=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
