"""Read any supported source into a canonical Polars table, with every set-aside row on record.

Input rows = kept rows + dropped rows, always: a bad record either stops the read with an
`InputError` (`on_error="raise"`) or lands in `dropped` with its reason (`on_error="skip"`);
well-formed rows that cannot become a record (chosen and rejected with different prompts, tied
ratings) always land in `dropped`. JSON Lines go through the table path (`prefdata.io.fast`), anything else
record by record (`prefdata.io.records`).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Iterator

import polars as pl

from prefdata.io.records import SNIFF, OnError, ReadResult, choose_format, to_frame, drops_frame, take
from prefdata.io.raw import JsonLines, Raw, iter_raw, open_source

__all__ = ["ReadResult", "read_dataset", "input_fields", "raw_column", "EXTRA_COLUMNS"]

# input fields the canonical table carries beside the record's own when the input has them: curation's split
EXTRA_COLUMNS = ("split",)
DATASET_TABLE = "data.parquet"  # a prefdata dataset folder's table


def read_dataset(source: str | Path, *, format: str | None = None, on_error: OnError = "raise",
                 split: str | None = None, fast: bool = True) -> ReadResult:
    """Read `source` (file, dataset folder or Hub id) in `format` (detected when None). With `fast`, JSON Lines
    in the common formats are checked as a table (`prefdata.io.fast`); `fast=False` checks every record with
    Pydantic. Both give the same result."""
    name = str(source)
    opened = open_source(source, split=split)
    result = None
    if isinstance(opened, JsonLines):
        if fast:
            from prefdata.io.fast import read_lines

            result = read_lines(opened, name, format, on_error)
        if result is None:
            opened = opened.raws()
    return _with_extra_columns(result or _read_records(opened, name, format, on_error), source, split)


def _with_extra_columns(result: ReadResult, source: str | Path, split: str | None) -> ReadResult:
    """The declared extra columns (`EXTRA_COLUMNS`) of a local input, aligned with the kept rows."""
    if not Path(source).exists():  # a Hub id: not fetched a second time for them
        return result
    fields = input_fields(source, split)
    for column in (c for c in EXTRA_COLUMNS if c in fields):
        result.frame = result.frame.with_columns(raw_column(source, column, result.dropped, split).alias(column))
    return result


def raw_column(source: str | Path, column: str, dropped: pl.DataFrame, split: str | None = None) -> pl.Series:
    """A field of the input records that the record model does not hold (a split, a category), as text, aligned
    with the table: rows the reader set aside are left out."""
    skip = set(dropped["row_id"].to_list())
    values = [None if raw.data is None else raw.data.get(column) for raw in iter_raw(source, split=split)
              if str(raw.line or raw.row) not in skip]
    return pl.Series(column, [None if v is None else str(v) for v in values], dtype=pl.String)


def input_fields(data: str | Path, split: str | None = None) -> set[str]:
    """The field names of the input records (from the Parquet schema, or the first record)."""
    path = Path(data)
    parquet = path / DATASET_TABLE if path.is_dir() else path
    if parquet.is_file() and parquet.suffix == ".parquet":
        import pyarrow.parquet as pq

        return set(pq.read_schema(parquet).names)
    first = next(iter_raw(data, split=split), None)
    return set(first.data) if first is not None and isinstance(first.data, dict) else set()


def _read_records(stream: Iterator[Raw], name: str, format: str | None, on_error: OnError) -> ReadResult:
    """The per-record path: every record adapted and checked by Pydantic, one by one."""
    head = list(islice(stream, SNIFF))
    fmt = choose_format(head, format, name)
    records: list[dict] = []
    drops: list[dict] = []
    rows_in = 0
    for raw in (*head, *stream):
        rows_in += 1
        take(raw, fmt, name, on_error, records, drops)
    frame = to_frame(records, fmt.kind, default_source=Path(name).name)
    return ReadResult(frame, drops_frame(drops), fmt.name, fmt.kind, name, rows_in)
