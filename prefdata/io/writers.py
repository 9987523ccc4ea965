"""Write canonical tables as JSONL, Parquet or a `datasets.save_to_disk` folder, in TRL's
conversational form (message lists) or standard form (plain strings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import polars as pl

from prefdata.errors import PrefdataError
from prefdata.io import transcript

Form = Literal["conversational", "standard"]
COMPLETIONS = ("chosen", "rejected", "completion")


def _single_turn_text(column: str, role: str) -> pl.Expr:
    first = pl.col(column).list.first()
    return pl.when((pl.col(column).list.len() == 1) & (first.struct.field("role") == role)).then(
        first.struct.field("content")
    )


def to_standard(frame: pl.DataFrame, chat_template: str | None = None) -> pl.DataFrame:
    """Message lists to strings. A one-turn user prompt is its text; a longer prompt is written as a
    Human/Assistant transcript (which reads back into the same turns). With `chat_template` (a tokenizer folder or
    Hub id) every prompt is written as that chat template renders it, generation prompt included (what the model
    continues; it does not read back into turns). A completion must be a single assistant turn: anything else
    cannot be said in the standard form and is an error."""
    completions = [c for c in COMPLETIONS if c in frame.columns]
    for column in completions:
        bad = frame.with_row_index("row").filter(_single_turn_text(column, "assistant").is_null())
        if bad.height:
            raise PrefdataError(
                f"row {bad['row'][0] + 1}: field {column!r} has {bad[column][0].len()} turn(s) or a "
                f"non-assistant turn; the standard form holds one assistant turn (write conversational)"
            )
    if chat_template is not None:
        from prefdata.io.chat_template import render_prompts

        prompt = pl.Series("prompt", render_prompts(frame["prompt"].to_list(), chat_template), dtype=pl.String)
    else:
        prompt = pl.coalesce(_single_turn_text("prompt", "user"), transcript.render_expr(pl.col("prompt")))
    return frame.with_columns(
        prompt.alias("prompt"),
        *[_single_turn_text(c, "assistant").alias(c) for c in completions],
    )


def output_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    if path.suffix == "":
        return "folder"
    raise PrefdataError(f"{path}: cannot write this file type; use .jsonl, .parquet, or a folder name")


def write_table(frame: pl.DataFrame, path: str | Path, form: Form = "conversational",
                chat_template: str | None = None) -> Path:
    """Write `frame` to `path` (.jsonl, .parquet, or a folder for `save_to_disk`); `chat_template` (standard form
    only): a tokenizer whose chat template writes the prompts."""
    path = Path(path)
    kind = output_kind(path)
    if chat_template is not None and form != "standard":
        raise PrefdataError("a chat template writes prompts as text: it needs the standard form")
    if form == "standard":
        frame = to_standard(frame, chat_template)
    if kind != "folder":
        path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "jsonl":
        frame.write_ndjson(path)
    elif kind == "parquet":
        frame.write_parquet(path)
    else:
        import datasets

        from prefdata.noise import datasets_bars_off

        with datasets_bars_off():  # "Saving the dataset" bars say nothing the summary line does not
            datasets.Dataset(frame.to_arrow()).save_to_disk(str(path))
    return path
