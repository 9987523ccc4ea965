"""The decision log: `review.jsonl` beside the data, one JSON line per decision, appended and flushed to disk as
each decision is made (a dead page or server loses nothing already answered).

A pair's decision is its last `accept`, `swap` or `drop` line (`clear` takes it back); `note` lines add a note
without deciding. The log is read as hostile input: a bad line is an error naming the file, line and field.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from prefdata import strict_json
from prefdata.errors import InputError
from prefdata.schema import check_text

LOG = "review.jsonl"
Action = Literal["accept", "swap", "drop", "clear", "note"]
DECIDING = ("accept", "swap", "drop")
MAX_TEXT = 2000  # characters of a reason or note: a person's words, not a document
COLUMNS = {"pair_id": pl.String, "decision": pl.String, "reason": pl.String, "note": pl.String, "time": pl.String}


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pair_id: str = Field(min_length=1, max_length=200)
    decision: Action
    reason: str | None = Field(None, max_length=MAX_TEXT)
    note: str | None = Field(None, max_length=MAX_TEXT)
    time: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    _texts = field_validator("reason", "note")(lambda v: v if v is None else check_text(v))

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str | None) -> str | None:
        return value.strip() if value else value

    @model_validator(mode="after")
    def _complete(self) -> "Decision":
        if self.decision == "drop" and not self.reason:
            raise ValueError("a drop needs a reason")
        if self.decision == "note" and not self.note:
            raise ValueError("a note needs its text")
        return self


def log_path(data: str | Path) -> Path:
    """`DIR/review.jsonl` for a dataset folder, `FILE.review.jsonl` beside a single file (as the stamp)."""
    data = Path(data)
    return data / LOG if data.is_dir() else data.with_name(data.name + "." + LOG)


def append(path: Path, decision: Decision) -> None:
    """Add one decision, on disk before this returns."""
    line = strict_json.dumps(decision.model_dump(), indent=None) + "\n"
    with path.open("a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def read(path: Path) -> pl.DataFrame:
    """Every decision in the log, in order (an absent log is an empty one). A bad line stops the read: it is a
    person's decision, which no stage may skip."""
    if not path.is_file():
        return pl.DataFrame(schema=COLUMNS)
    rows = []
    with path.open(encoding="utf-8", errors="strict") as f:
        for number, line in enumerate(_lines(f, path), start=1):
            if line.strip():
                rows.append(_parse(line, path, number))
    return pl.DataFrame(rows, schema=COLUMNS, orient="row") if rows else pl.DataFrame(schema=COLUMNS)


def _lines(f, path: Path):
    try:
        yield from f
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason} at byte {exc.start})", whole_file=True) from None


def parse_json(text: str) -> object:
    """Strict JSON, bounded in depth and number size, with no lone surrogates (`strict_json`)."""
    record = strict_json.loads(text)
    if (problem := strict_json.check(record, text)) is not None:
        raise problem
    return record


def _parse(line: str, path: Path, number: int) -> tuple:
    try:
        decision = Decision.model_validate(parse_json(line))
    except strict_json.JsonProblem as exc:
        raise InputError(str(path), exc.message, line=number, whole_file=True) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or None
        raise InputError(str(path), err["msg"].removeprefix("Value error, "), line=number, field=field,
                         whole_file=True) from None  # a decision cannot be skipped: the person must see it
    return tuple(decision.model_dump().values())


def current(decisions: pl.DataFrame) -> pl.DataFrame:
    """Each pair's standing decision (pair_id, decision, reason, note, time): its last accept/swap/drop, unless a
    later `clear` took it back; `note` joins every note on the pair. Pairs with only notes have decision null."""
    order = decisions.with_row_index("_line")
    standing = (order.filter(pl.col("decision").is_in([*DECIDING, "clear"]))
                .group_by("pair_id").agg(pl.all().sort_by("_line").last())
                .with_columns(pl.when(pl.col("decision") == "clear").then(None).otherwise(pl.col(c)).alias(c)
                              for c in ("decision", "reason", "time"))
                .select("pair_id", "decision", "reason", "time"))
    notes = (order.filter(pl.col("note").is_not_null()).group_by("pair_id")
             .agg(pl.col("note").sort_by("_line").str.join("\n")))
    return (standing.join(notes, on="pair_id", how="full", coalesce=True)
            .select(list(COLUMNS)).sort("pair_id"))


def digest(path: Path) -> str | None:
    """A digest of the log's standing decisions (pair, decision, reason), or None when it holds none: what a
    stamp records as applied. Notes and taken-back decisions do not change the data, so they do not count."""
    if not path.is_file():
        return None
    standing = current(read(path)).filter(pl.col("decision").is_not_null()).select("pair_id", "decision", "reason")
    if standing.height == 0:
        return None
    return "sha256:" + hashlib.sha256(strict_json.dumps(standing.rows(), indent=None).encode()).hexdigest()
