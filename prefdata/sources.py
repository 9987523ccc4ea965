"""The sources stage: a spec's inputs as prompts (to generate for) or as pairs (to curate as they are)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import polars as pl

from prefdata import schema
from prefdata.errors import InputError, PrefdataError
from prefdata.io import ReadResult, read_dataset
from prefdata.spec import SourceSpec, Spec

STAGE = "sources"


def _read(spec: Spec, index: int) -> ReadResult:
    source = spec.sources[index]
    with _spec_keys(f"sources[{index}].format"):
        return read_dataset(spec.resolve(source.path), format=source.format, split=source.split,
                            on_error=source.on_error)


@contextmanager
def _spec_keys(key: str) -> Iterator[None]:
    """A reader's advice for the command line ("pass --format") names the spec key to set instead."""
    try:
        yield
    except InputError as exc:
        if "pass --format" in exc.message:  # the same error, every attribute kept, with the spec's words
            exc.message = exc.message.replace("pass --format", f"set {key} in the spec")
            exc.args = (exc.location() + exc.message,)
        raise


def _limited(frame: pl.DataFrame, source: SourceSpec, id_column: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    if not source.limit:
        return frame, schema.empty(schema.DROPPED)
    over = schema.dropped_rows(frame.slice(source.limit), STAGE, "over_limit", id_column=id_column)
    return frame.head(source.limit), over


def _read_all(spec: Spec, columns: dict, id_column: str, want: set[str], unique: bool) -> schema.StageResult:
    frames, dropped = [], []
    for index, source in enumerate(spec.sources):
        result = _read(spec, index)
        if result.kind not in want:
            hint = "a build without generation curates preference pairs only" if want == {"pairwise"} else \
                "a source for generation needs prompts"
            raise PrefdataError(f"{source.path}: {result.kind} data cannot be used here ({hint})")
        frame, over = _limited(schema.conform(result.frame, columns).select(list(columns)), source, id_column)
        frames.append(frame)
        dropped += [result.dropped.with_columns(pl.lit(STAGE).alias("stage")), over]
    rows = pl.concat(frames)
    first = pl.col(id_column).is_first_distinct() if unique else pl.lit(True)
    repeats = schema.dropped_rows(rows.filter(~first), STAGE, "duplicate_" + id_column.removesuffix("_id"),
                                  id_column=id_column)
    kept = rows.filter(first)
    if kept.height == 0:
        raise PrefdataError("the spec's sources hold no usable rows")
    return schema.StageResult(kept, pl.concat([*dropped, repeats]))


def read_prompts(spec: Spec) -> schema.StageResult:
    """Prompts from every source (pairs and unpaired data give their prompts); repeated prompts dropped."""
    return _read_all(spec, schema.PROMPTS, "prompt_id", {"prompts", "pairwise", "unpaired"}, unique=True)


def read_pairs(spec: Spec) -> schema.StageResult:
    """Preference pairs from every source, to curate without generating (duplicates are curation's job)."""
    return _read_all(spec, schema.PAIRS, "pair_id", {"pairwise"}, unique=False)


def read_gold(spec: Spec) -> pl.DataFrame | None:
    """The spec's known-answer pairs, or None."""
    if spec.gold is None:
        return None
    with _spec_keys("gold.format"):
        result = read_dataset(spec.resolve(spec.gold.path), format=spec.gold.format)
    if result.kind != "pairwise" or result.frame.height == 0:
        raise PrefdataError(f"{spec.where('gold', 'path')}: {spec.gold.path}: gold items must be preference pairs "
                            f"(found {result.kind}, {result.frame.height} rows)")
    return result.frame
