"""Decontamination: prompts sharing n-grams (13 words by default) with evaluation sets the user names.

Evaluation sets are read with the same readers as data (JSONL, JSON, Parquet, CSV, dataset folders,
Hub ids); their text is the `field` column, or every string in a record (message contents included).
A prompt shorter than `ngram` tokens is contaminated only by an evaluation text equal to it after
normalisation (its one shingle is the whole text).
"""

from __future__ import annotations

from typing import Any, Iterator

import polars as pl

from prefdata import schema
from prefdata.curate.config import DecontaminateConfig
from prefdata.curate.shingles import shingle_hashes
from prefdata.curate.text import all_text, pair_id_column
from prefdata.errors import InputError

STAGE = "decontaminate"


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def eval_texts(source: str, field: str | None = None, split: str | None = None) -> pl.Series:
    """Every text of an evaluation set (reading is an edge: a loop over its records is fine)."""
    from prefdata.io.raw import iter_raw

    texts: list[str] = []
    for raw in iter_raw(source, split=split):
        if raw.data is None:
            raise InputError(source, raw.error or "unreadable record", line=raw.line, row=raw.row)
        if field is not None and field not in raw.data:
            raise InputError(source, f"no field {field!r} (fields: {', '.join(raw.data)})", line=raw.line,
                             row=raw.row)
        texts.extend(_strings(raw.data[field] if field is not None else raw.data))
    return pl.Series(texts, dtype=pl.String)


def overlaps(prompts: pl.Series, evals: pl.Series, ngram: int = 13, unit: str = "auto") -> pl.Series:
    """Number of distinct n-gram shingles each prompt shares with the evaluation texts."""
    rows, hashes = shingle_hashes(prompts, ngram, unit)
    _, seen = shingle_hashes(evals, ngram, unit)
    mine = pl.DataFrame({"row": rows, "h": hashes}).unique()
    shared = mine.join(pl.DataFrame({"h": seen}).unique(), on="h", how="semi").group_by("row").len()
    full = pl.DataFrame({"row": range(prompts.len())}, schema={"row": shared.schema["row"]})
    return full.join(shared, on="row", how="left").sort("row")["len"].fill_null(0).cast(pl.Int64)


def decontaminate(frame: pl.DataFrame, config: DecontaminateConfig, ctx=None) -> schema.StageResult:
    prompts = frame.select(all_text("prompt")).to_series()
    hit = pl.repeat(None, frame.height, dtype=pl.String, eager=True)
    count = pl.repeat(0, frame.height, dtype=pl.Int64, eager=True)
    for name in config.eval_sets:
        found = overlaps(prompts, eval_texts(name, config.field, config.split), config.ngram, config.unit)
        new = (found >= config.min_overlap) & hit.is_null()
        hit = pl.select(pl.when(new).then(pl.lit(name)).otherwise(hit)).to_series()
        count = pl.select(pl.when(new).then(found).otherwise(count)).to_series()
    if config.action == "flag":
        return schema.StageResult(frame.with_columns(hit.is_not_null().alias("contaminated"),
                                                     hit.alias("contaminated_by")), schema.empty(schema.DROPPED))
    bad = hit.is_not_null()
    detail = pl.lit(count.filter(bad).cast(pl.String)) + pl.lit(f" shared {config.ngram}-grams with ") + pl.lit(
        hit.filter(bad))
    return schema.StageResult(frame.filter(~bad), schema.dropped_rows(frame.filter(bad), STAGE, "contaminated",
                                                                      id_column=pair_id_column(frame), detail=detail))
