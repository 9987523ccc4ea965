"""Records into a canonical Polars table, one by one: what the reader (`prefdata.io.reader`) and its table
path (`prefdata.io.fast`) share. Every set-aside row is on record.

Input rows = kept rows + dropped rows, always: a bad record either stops the read with an
`InputError` (`on_error="raise"`) or lands in `dropped` with its reason (`on_error="skip"`);
well-formed rows that cannot become a record (chosen and rejected with different prompts, tied
ratings) always land in `dropped`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import ValidationError

from prefdata import schema
from prefdata.errors import InputError, RecordProblem
from prefdata.io import ids
from prefdata.io.formats import FORMATS, Format, detect
from prefdata.io.raw import Raw

OnError = Literal["raise", "skip"]
MODELS = {"pairwise": schema.PreferencePair, "unpaired": schema.UnpairedExample, "prompts": schema.PromptRecord}
TABLES = {"pairwise": schema.PAIRS, "unpaired": schema.UNPAIRED, "prompts": schema.PROMPTS}
SNIFF = 20


@dataclass
class ReadResult:
    frame: pl.DataFrame    # canonical table: schema.PAIRS, UNPAIRED or PROMPTS, and `split` when the input has it
    dropped: pl.DataFrame  # schema.DROPPED, stage "read"
    format: str
    kind: str
    source: str
    rows_in: int

    def drop_counts(self) -> dict[str, int]:
        counts = self.dropped.group_by("reason").len().sort("reason")
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list()))


def _field_path(loc: tuple, fmt: Format) -> str:
    head, *rest = [str(p) for p in loc] or ["?"]
    out = fmt.fields.get(head, head)
    for part in rest:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


def _reason(error: dict) -> str:
    """A short, countable reason for a Pydantic error."""
    message = error["msg"]
    if error["type"] == "missing":
        return "missing_field"
    if "is empty" in message or error["type"] == "too_short":
        return "empty_text"
    if "NUL byte" in message:
        return "nul_byte"
    if error["type"] == "finite_number":
        return "non_finite_number"
    return "wrong_type" if error["type"].endswith(("_type", "_parsing")) else "invalid_record"


def _validate(record: dict, fmt: Format) -> dict:
    try:
        return MODELS[fmt.kind].model_validate(record).model_dump()
    except ValidationError as exc:
        err = exc.errors()[0]
        message = err["msg"].removeprefix("Value error, ")
        raise RecordProblem(message, field=_field_path(err["loc"], fmt), reason=_reason(err)) from None


def _schema_sample(source: str) -> list[dict]:
    """For a table with no rows: a stand-in record built from its Parquet schema, so that an empty
    dataset still has a format (list columns stand for message lists)."""
    path = Path(source)
    path = path / "data.parquet" if path.is_dir() else path
    if path.suffix != ".parquet" or not path.is_file():
        return []
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = pq.read_schema(path)
    return [{f.name: ([] if pa.types.is_list(f.type) or pa.types.is_large_list(f.type) else "") for f in fields}]


def choose_format(raws: list[Raw], name: str | None, source: str) -> Format:
    if name is not None:
        if name not in FORMATS:
            raise InputError(source, f"unknown format {name!r} (choose from {', '.join(FORMATS)})")
        return FORMATS[name]
    sample = [r.data for r in raws if r.data is not None] or _schema_sample(source)
    broken = next((r for r in raws if r.error is not None), None)
    if not sample and broken is not None:  # nothing readable to detect from: report the first failure
        raise InputError(source, broken.error, line=broken.line, row=broken.row, field=broken.field,
                         whole_file=True)
    if not raws and not sample:
        raise InputError(source, "no records: the input is empty or holds only whitespace")
    detected = detect(sample)
    if detected is None:
        columns = sorted(set().union(*(r.keys() for r in sample))) if sample else []
        raise InputError(source, f"cannot tell the format from columns {columns}; pass --format "
                                 f"({', '.join(FORMATS)})")
    return FORMATS[detected]


def _raw_text(raw: Raw) -> str:
    if raw.data is not None:
        return json.dumps(raw.data, ensure_ascii=False, default=str)
    return raw.text or ""


def take(raw: Raw, fmt: Format, name: str, on_error: OnError, records: list[dict], drops: list[dict]) -> None:
    """One record through the per-record path: onto `records`, or onto `drops` with its reason, or raised."""
    try:
        if raw.error is not None:
            raise RecordProblem(raw.error, field=raw.field, reason=raw.reason)
        records.append(_validate(fmt.adapt(raw.data), fmt))
    except RecordProblem as problem:
        where = InputError(name, problem.message, line=raw.line, row=raw.row, field=problem.field)
        if not problem.drop and on_error == "raise":
            raise where from None
        drops.append({
            "stage": "read", "reason": problem.reason, "detail": str(where),
            "prompt_id": None, "row_id": str(raw.line or raw.row), "record": _raw_text(raw),
        })


def drops_frame(drops: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(drops, schema=schema.DROPPED) if drops else schema.empty(schema.DROPPED)


def input_schema(kind: str) -> dict[str, pl.DataType]:
    """The columns a record of `kind` holds, in the table's order and dtypes."""
    return {k: v for k, v in TABLES[kind].items() if k in MODELS[kind].model_fields}


def records_frame(records: list[dict], kind: str) -> pl.DataFrame:
    columns = input_schema(kind)
    return pl.DataFrame(records, schema=columns) if records else pl.DataFrame(schema=columns)


def to_frame(records: list[dict], kind: str, default_source: str) -> pl.DataFrame:
    return finish_frame(records_frame(records, kind), kind, default_source)


def finish_frame(frame: pl.DataFrame, kind: str, default_source: str) -> pl.DataFrame:
    """Records as a canonical table: the default source filled in, the contract's columns, the ids."""
    frame = frame.with_columns(pl.col("source").fill_null(pl.lit(default_source)))
    return ids.with_ids(schema.conform(frame, TABLES[kind]), kind)
