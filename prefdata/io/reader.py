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

from prefdata.io.records import SNIFF, OnError, ReadResult, choose_format, to_frame, drops_frame, take
from prefdata.io.raw import JsonLines, Raw, open_source

__all__ = ["ReadResult", "read_dataset"]


def read_dataset(source: str | Path, *, format: str | None = None, on_error: OnError = "raise",
                 split: str | None = None, fast: bool = True) -> ReadResult:
    """Read `source` (file, dataset folder or Hub id) in `format` (detected when None). With `fast`, JSON Lines
    in the common formats are checked as a table (`prefdata.io.fast`); `fast=False` checks every record with
    Pydantic. Both give the same result."""
    name = str(source)
    opened = open_source(source, split=split)
    if isinstance(opened, JsonLines):
        if fast:
            from prefdata.io.fast import read_lines

            if (result := read_lines(opened, name, format, on_error)) is not None:
                return result
        opened = opened.raws()
    return _read_records(opened, name, format, on_error)


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
