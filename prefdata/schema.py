"""Records (Pydantic, for the edges) and table column contracts (Polars, for the bulk).

Every module imports column names and dtypes from here, so that one name means one thing
(DESIGN.md, rule 7).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, NamedTuple

import polars as pl
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

Role = Literal["system", "user", "assistant", "tool"]


# Characters that show nothing: Unicode White_Space (and the separators Python's str.isspace adds), and the
# invisible format and filler characters (soft hyphen, zero-width space and joiners, bidi marks, word joiner,
# byte-order mark, variation selectors, Hangul fillers, Braille blank, tags). A text made only of them is empty.
BLANK_CHARS = ("\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\xad\u034f\u061c\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f"
               "\u2000-\u200f\u2028-\u202f\u205f-\u206f\u2800\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0"
               "\U000e0000-\U000e007f")
BLANK_TEXT = f"^[{BLANK_CHARS}]*$"  # one pattern for Python's re and Polars' regex engine: one rule everywhere
_BLANK = re.compile(BLANK_TEXT)


def is_blank(text: str) -> bool:
    return _BLANK.match(text) is not None


def check_text(value: str) -> str:
    """Reject text that cannot be trained on: empty, only whitespace or invisible characters, or holding a NUL
    byte."""
    if "\x00" in value:
        raise ValueError("contains a NUL byte")
    if is_blank(value):
        raise ValueError("is empty (or only whitespace and invisible characters)")
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):  # JSON true is not a score; Pydantic would read it as 1.0
        raise PydanticCustomError("bool_type", "a score must be a number, not a boolean")
    return value


# A score or an agreement: a finite number. NaN, ±inf and the strings "NaN"/"inf" are bad input: NaN passes
# every `margin < x` filter and poisons every mean. Numeric text ("4.5", from CSV files) is read.
Score = Annotated[float, Field(allow_inf_nan=False), BeforeValidator(_not_bool)]


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    role: Role
    content: str

    _content = field_validator("content")(check_text)


Conversation = list[Message]


class PreferencePair(BaseModel):
    """A conversational preference pair: the prompt's turns, then the chosen and rejected continuations."""

    model_config = ConfigDict(extra="forbid")
    prompt: Conversation = Field(min_length=1)
    chosen: Conversation = Field(min_length=1)
    rejected: Conversation = Field(min_length=1)
    chosen_score: Score | None = None
    rejected_score: Score | None = None
    pair_id: str | None = None
    agreement: Score | None = None
    judges: list[str] = Field(default_factory=list)
    source: str | None = None
    confidence: Annotated[Score, Field(ge=0, le=1)] | None = None  # the judges' probability of the decision

    @field_validator("prompt")
    @classmethod
    def _prompt_ends_with_user(cls, turns: Conversation) -> Conversation:
        if turns[-1].role not in ("user", "tool"):
            raise ValueError(f"last prompt turn must be 'user', not {turns[-1].role!r}")
        return turns

    @field_validator("chosen", "rejected")
    @classmethod
    def _completion_is_assistant(cls, turns: Conversation) -> Conversation:
        if turns[0].role != "assistant":
            raise ValueError(f"must start with an 'assistant' turn, not {turns[0].role!r}")
        return turns


class UnpairedExample(BaseModel):
    """A KTO example: a prompt, one completion, and whether the completion is desirable."""

    model_config = ConfigDict(extra="forbid")
    prompt: Conversation = Field(min_length=1)
    completion: Conversation = Field(min_length=1)
    label: bool
    source: str | None = None

    _prompt_ends_with_user = field_validator("prompt")(PreferencePair._prompt_ends_with_user.__func__)
    _completion_is_assistant = field_validator("completion")(
        PreferencePair._completion_is_assistant.__func__
    )


class PromptRecord(BaseModel):
    """A prompt to generate candidates for."""

    model_config = ConfigDict(extra="forbid")
    prompt: Conversation = Field(min_length=1)
    source: str | None = None
    meta: str | None = None  # JSON text: kept verbatim, never interpreted

    _prompt_ends_with_user = field_validator("prompt")(PreferencePair._prompt_ends_with_user.__func__)




# ---- Polars dtypes -------------------------------------------------------------------------

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)

PROMPTS = {
    "prompt_id": pl.String,
    "prompt": MESSAGES,
    "source": pl.String,
    "meta": pl.String,
}

CANDIDATES = {
    "prompt_id": pl.String,
    "candidate_id": pl.String,
    "model": pl.String,
    "response": pl.String,
    "finish_reason": pl.String,
    "tokens_in": pl.Int64,
    "tokens_out": pl.Int64,
    "params": pl.String,  # JSON of the sampling parameters
}

JUDGMENTS = {
    "prompt_id": pl.String,
    "judge": pl.String,
    "a_id": pl.String,
    "b_id": pl.String,
    "order": pl.String,
    "winner": pl.String,
    "score_a": pl.Float64,
    "score_b": pl.Float64,
    "rationale": pl.String,
    "raw": pl.String,
    "parse_ok": pl.Boolean,
    "error": pl.String,
    # How sure the judge was, from its token log-probabilities (null where its backend gives none): the
    # probability of its verdict, and pairwise its probabilities of a, b and tie (summing to 1), de-swapped.
    "confidence": pl.Float64,
    "p_a": pl.Float64,
    "p_b": pl.Float64,
    "p_tie": pl.Float64,
}

PAIRS = {
    "pair_id": pl.String,
    "prompt": MESSAGES,
    "chosen": MESSAGES,
    "rejected": MESSAGES,
    "chosen_score": pl.Float64,
    "rejected_score": pl.Float64,
    "margin": pl.Float64,
    "agreement": pl.Float64,
    "judges": pl.List(pl.String),
    "source": pl.String,
    "prompt_id": pl.String,  # not in DESIGN's required list; kept for grouping (dedupe, splits)
    # the mean, over judges and orders, of the probability each judgment gave to the panel's decision
    # (null when no judgment had one: no token log-probabilities)
    "confidence": pl.Float64,
}

UNPAIRED = {
    "prompt": MESSAGES,
    "completion": MESSAGES,
    "label": pl.Boolean,
    "source": pl.String,
    "prompt_id": pl.String,
}

# Rows a stage removed: which stage, why, the row's ids, and the row itself as JSON.
DROPPED = {
    "stage": pl.String,
    "reason": pl.String,
    "detail": pl.String,
    "prompt_id": pl.String,
    "row_id": pl.String,
    "record": pl.String,
}


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Return `frame` with the contract's columns first, in order and dtype; missing ones are null."""
    cols = [
        (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
        for name, dtype in schema.items()
    ]
    extra = [c for c in frame.columns if c not in schema]
    return frame.select(cols + extra)


class StageResult(NamedTuple):
    """What every stage returns: the rows it kept and the rows it dropped (with `stage`, `reason`)."""

    kept: pl.DataFrame
    dropped: pl.DataFrame


def dropped_rows(
    frame: pl.DataFrame,
    stage: str,
    reason: str | pl.Expr,
    *,
    id_column: str | None = None,
    detail: str | pl.Expr | None = None,
    helpers: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Turn removed rows into the DROPPED table, keeping each whole row as JSON in `record` (less `helpers`: columns
    that only the reason or detail expressions read)."""
    if frame.height == 0:
        return empty(DROPPED)

    def as_expr(value: str | pl.Expr | None) -> pl.Expr:
        return value if isinstance(value, pl.Expr) else pl.lit(value, dtype=pl.String)

    return frame.select(
        pl.lit(stage).alias("stage"),
        as_expr(reason).cast(pl.String).alias("reason"),
        as_expr(detail).cast(pl.String).alias("detail"),
        (pl.col("prompt_id") if "prompt_id" in frame.columns else pl.lit(None)).cast(pl.String).alias("prompt_id"),
        (pl.col(id_column) if id_column else pl.lit(None)).cast(pl.String).alias("row_id"),
        pl.struct(pl.all().exclude(helpers) if helpers else pl.all()).struct.json_encode().alias("record"),
    )
