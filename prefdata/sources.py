"""The sources stage: a spec's inputs as prompts (to generate for) or as pairs (to curate as they are)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, NamedTuple

import polars as pl

from prefdata import schema
from prefdata.errors import InputError, PrefdataError
from prefdata.io import ReadResult, ids, read_dataset
from prefdata.spec import SourceSpec, Spec

STAGE = "sources"


class SourcesResult(NamedTuple):
    """The sources stage's rows (as every stage's), and what each spec source gave to the mix."""

    kept: pl.DataFrame
    dropped: pl.DataFrame
    mix: list[dict]
    rows_in: int  # records read from every source, unreadable ones included


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


def _sampled(frame: pl.DataFrame, source: SourceSpec, id_column: str, shown: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows a source gives to the mix: `weight` (a share) and `limit` (a count) take the first rows, or a
    random sample in a seeded hash order of the row ids (not the file's order: the same rows whatever the
    order), kept in file order. The rest are dropped with reason `not_sampled`."""
    wanted = [n for n in (source.limit, source.weight and round(source.weight * frame.height)) if n is not None]
    if not wanted or min(wanted) >= frame.height:
        return frame, schema.empty(schema.DROPPED)
    take = min(wanted)
    rule = f"limit {source.limit}" if take == source.limit else f"weight {source.weight:g} of {frame.height:,} rows"
    if (source.sample or ("random" if source.weight else "first")) == "first":
        chosen = pl.int_range(pl.len()) < take
    else:
        key = ids.hash_expr(pl.col(id_column) + pl.lit(f"\x1f{source.seed}"))
        chosen = key.rank("ordinal") <= take  # a repeated id: its copies in file order
    marked = frame.with_columns(chosen.alias("_take"))
    dropped = schema.dropped_rows(marked.filter(~pl.col("_take")).drop("_take"), STAGE, "not_sampled",
                                  id_column=id_column, detail=f"{shown}: {rule}")  # shown: no ${ENV} values
    return marked.filter(pl.col("_take")).drop("_take"), dropped


def _mix(source: SourceSpec, read: int, taken: int) -> dict:
    return {"path": source.path, "split": source.split, "rows": read, "taken": taken, "weight": source.weight,
            "limit": source.limit}


def _read_all(spec: Spec, columns: dict, id_column: str, want: set[str], unique: bool) -> SourcesResult:
    frames, dropped, mix, rows_in = [], [], [], 0
    for index, source in enumerate(spec.sources):
        result = _read(spec, index)
        if result.kind not in want:
            hint = "a build without generation curates preference pairs only" if want == {"pairwise"} else \
                "a source for generation needs prompts"
            raise PrefdataError(f"{source.path}: {result.kind} data cannot be used here ({hint})")
        read = schema.conform(result.frame, columns).select(list(columns))
        rows_in += read.height + result.dropped.height
        frame, over = _sampled(read, source, id_column, spec.shown(source.path))
        frames.append(frame)
        mix.append(_mix(source, read.height, frame.height))
        dropped += [result.dropped.with_columns(pl.lit(STAGE).alias("stage")), over]
    rows = pl.concat(frames)
    first = pl.col(id_column).is_first_distinct() if unique else pl.lit(True)
    repeats = schema.dropped_rows(rows.filter(~first), STAGE, "duplicate_" + id_column.removesuffix("_id"),
                                  id_column=id_column)
    kept = rows.filter(first)
    if kept.height == 0:
        raise PrefdataError("the spec's sources hold no usable rows")
    return SourcesResult(kept, pl.concat([*dropped, repeats]), mix, rows_in)


def spec_prompts(spec: Spec) -> SourcesResult:
    """Prompts from every source (pairs and unpaired data give their prompts); repeated prompts dropped."""
    return _read_all(spec, schema.PROMPTS, "prompt_id", {"prompts", "pairwise", "unpaired"}, unique=True)


def spec_pairs(spec: Spec) -> SourcesResult:
    """Preference pairs from every source, to curate without generating (duplicates are curation's job)."""
    return _read_all(spec, schema.PAIRS, "pair_id", {"pairwise"}, unique=False)


def spec_gold(spec: Spec) -> pl.DataFrame | None:
    """The spec's known-answer pairs, or None."""
    if spec.gold is None:
        return None
    with _spec_keys("gold.format"):
        result = read_dataset(spec.resolve(spec.gold.path), format=spec.gold.format)
    if result.kind != "pairwise" or result.frame.height == 0:
        raise PrefdataError(f"{spec.where('gold', 'path')}: {spec.gold.path}: gold items must be preference pairs "
                            f"(found {result.kind}, {result.frame.height} rows)")
    return result.frame
