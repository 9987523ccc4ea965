"""JSON Lines in the common formats, read and checked as one table instead of record by record.

A line takes the fast path only when it has the shape its file's first record has: the same keys in the same
order, each value of the same kind, written in strict JSON that Polars parses exactly as `strict_json` does (a
regular expression says so: no control characters or lone surrogates in strings, short plain numbers, no
other keys, so no duplicates and no deep nesting). Polars then parses those lines, and Polars expressions state
the rules of the format adapters and of the Pydantic records. Every other line (another shape, a broken rule,
hostile bytes) goes through the per-record path, which gives the message, reason and row it always gave; the
two sets of rows are merged back in line order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import numpy as np
import polars as pl
import pyarrow as pa

from prefdata import schema
from prefdata.io.formats import PAIR_EXTRAS, SHAREGPT_ROLES, Format
from prefdata.io.lazy import collect
from prefdata.io.records import (
    SNIFF, OnError, ReadResult, choose_format, drops_frame, finish_frame, input_schema, records_frame, take,
)
from prefdata.io.raw import JsonLines, Raw, _json_line

# ---- the shapes a line may have -------------------------------------------------------------------------
# JSON whitespace only (Rust's \s is Unicode's); strings without control characters and with surrogate escapes
# only in pairs; numbers Python and Polars read to the same float (at most 15 digits, or 9 + 9 around a point).
W = r"[ \t\n\r]*"
STR = (r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u(?:[0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2})'
       r'|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})*"')
NUM = r"(?:-?[1-9][0-9]{0,14}|0|-?(?:0|[1-9][0-9]{0,8})\.[0-9]{1,9})"
KEY = re.compile(r"[A-Za-z0-9_-]+")


def _obj(*pairs: tuple[str, str]) -> str:
    """An object of exactly these keys, in either order (two keys)."""
    (a, va), (b, vb) = pairs
    one = f'"{a}"{W}:{W}{va}{W},{W}"{b}"{W}:{W}{vb}'
    two = f'"{b}"{W}:{W}{vb}{W},{W}"{a}"{W}:{W}{va}'
    return rf"\{{{W}(?:{one}|{two}){W}\}}"


def _list(item: str) -> str:
    return rf"\[{W}{item}(?:{W},{W}{item})*{W}\]"


MSG = _obj(("role", STR), ("content", STR))
SG_MSG = _obj(("from", STR), ("value", STR))
MESSAGE = schema.MESSAGE
SG_MESSAGE = pl.Struct({"from": pl.String, "value": pl.String})
# kind of value -> (its pattern, its Polars dtype)
KINDS: dict[str, tuple[str, pl.DataType]] = {
    "text": (STR, pl.String),
    "number": (f"(?:{NUM}|null)", pl.Float64),
    "bool": ("(?:true|false|null)", pl.Boolean),
    "strings": (rf"(?:\[{W}(?:{STR}(?:{W},{W}{STR})*)?{W}\]|null)", pl.List(pl.String)),
    "message": (MSG, MESSAGE),
    "messages": (_list(MSG), schema.MESSAGES),
    "sg_message": (SG_MSG, SG_MESSAGE),
    "sg_messages": (_list(SG_MSG), pl.List(SG_MESSAGE)),
}


def _kind(value: Any) -> str | None:
    """The kind of a value of the first record, or None when the fast path has no shape for it."""
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return {frozenset({"role", "content"}): "message", frozenset({"from", "value"}): "sg_message"}.get(
            frozenset(value))
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return "strings"
        inner = _kind(value[0])
        return {"message": "messages", "sg_message": "sg_messages"}.get(inner or "")
    return None


def _shape(first: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
    """The pattern of a line like `first` (same keys, same order, same kinds), and each key's kind."""
    kinds = {key: _kind(value) for key, value in first.items()}
    if not kinds or not all(KEY.fullmatch(k) and kind for k, kind in kinds.items()):
        return None
    body = f"{W},{W}".join(f'"{k}"{W}:{W}{KINDS[kind][0]}' for k, kind in kinds.items())
    return rf"^{W}\{{{W}{body}{W}\}}{W}$", kinds


# ---- the lines of a file ----------------------------------------------------------------------------------
def _lines(blob: bytes) -> pl.Series | None:
    """Every line (split at each \\n, as `bytes.split`, each but the last keeping its \\n), without copying the
    text; None when the file is not UTF-8 (the per-record path reports where)."""
    data = np.frombuffer(blob, np.uint8)
    step = 1 << 24  # a 16 MiB window at a time keeps the temporary mask small
    ends = [np.flatnonzero(data[i:i + step] == 10) + i for i in range(0, len(data), step)]
    offsets = np.concatenate([[0], *[e + 1 for e in ends], [len(blob)]]).astype(np.int64)
    binary = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1,
                                              [None, pa.py_buffer(offsets), pa.py_buffer(blob)])
    try:
        text = binary.cast(pa.large_string())  # checks UTF-8
    except pa.ArrowInvalid:
        return None
    return pl.Series("line", text)


def _blank(line: pl.Expr) -> pl.Expr:
    """Whitespace only, as `bytes.strip()` sees it (a regex: strip_chars would copy every line)."""
    return line.str.contains(r"^[ \t\n\r\x0b\x0c]*$").alias("_blank")


def _raw(line: str, number: int) -> Raw:
    return _json_line(line.removesuffix("\n").encode(), number)


# ---- the rules, as expressions ----------------------------------------------------------------------------
ROLES = ["system", "user", "assistant", "tool"]
MARKERS = {"\n\nHuman:": "\x00user\x01", "\n\nAssistant:": "\x00assistant\x01", "\n\nSystem:": "\x00system\x01"}
TRANSCRIPT_START = r"^\n\n(?:Human|Assistant|System):"


def _good_text(text: pl.Expr) -> pl.Expr:
    """`schema.check_text` passes."""
    return text.is_not_null() & ~text.str.contains("\x00", literal=True) & ~text.str.contains(schema.BLANK_TEXT)


def _good_turns(turns: pl.Expr) -> pl.Expr:
    """A `Conversation` of at least one message, each with a known role and good text."""
    each = pl.element().struct.field("role").is_in(ROLES) & _good_text(pl.element().struct.field("content"))
    each = each.fill_null(False)  # an unknown speaker's null role: all() would skip it
    return turns.is_not_null() & (turns.list.len() > 0) & turns.list.eval(each).list.all()


def _role(turns: pl.Expr, at: int) -> pl.Expr:
    return turns.list.get(at, null_on_oob=True).struct.field("role")


def _content(turns: pl.Expr, at: int) -> pl.Expr:
    return turns.list.get(at, null_on_oob=True).struct.field("content")


def _turn() -> pl.Expr:
    """One "role\x01content" piece of a split transcript as a message."""
    turn = pl.element().str.split_exact("\x01", 1).struct.rename_fields(["role", "content"])
    return turn.struct.with_fields(pl.field("content").str.strip_prefix(" "))


def _transcript(text: pl.Expr, drop_cue: bool = False) -> pl.Expr:
    """`transcript.parse` for text that starts with a speaker marker and holds no NUL (the marks used here)."""
    turns = text.str.replace_many(MARKERS).str.split("\x00").list.slice(1).list.eval(_turn())
    if drop_cue:
        cue = (_role(turns, -1) == "assistant") & (_content(turns, -1) == "")
        turns = pl.when(cue).then(turns.list.head(turns.list.len() - 1)).otherwise(turns)
    return turns


def _one(role: str, text: pl.Expr) -> pl.Expr:
    return pl.concat_list(pl.struct(pl.lit(role).alias("role"), text.alias("content")))


def _sharegpt(turns: pl.Expr) -> pl.Expr:
    """{from, value} messages as {role, content}; an unknown speaker gets a null role (not good turns)."""
    role = pl.element().struct.field("from").str.to_lowercase().replace_strict(SHAREGPT_ROLES, default=None)
    return turns.list.eval(pl.struct(role.alias("role"), pl.element().struct.field("value").alias("content")))


class NotFast(Exception):
    """The first record has a kind of value this format's fast path does not take: read record by record."""


class Frame:
    """The parsed lines of one file with their kinds, and the checks collected while adapting them."""

    def __init__(self, data: pl.DataFrame, kinds: dict[str, str]):
        self.data, self.kinds, self.checks = data.lazy(), kinds, [pl.lit(True)]

    def stage(self, expr: pl.Expr) -> pl.Expr:
        """`expr` as a column of its own, computed once however often the rules read it."""
        name = f"_stage{len(self.data.collect_schema())}"
        self.data = self.data.with_columns(expr.alias(name))
        return pl.col(name)

    def col(self, key: str) -> pl.Expr:
        return pl.col(key) if key in self.kinds else pl.lit(None)

    def need(self, key: str, *kinds: str) -> pl.Expr:
        if self.kinds.get(key) not in kinds:
            raise NotFast(key)
        return pl.col(key)

    def messages(self, key: str, role: str) -> pl.Expr:
        """`formats.messages`: text (a transcript for the user), one message, or a list of them."""
        kind, value = self.kinds.get(key), pl.col(key)
        if kind == "text":
            if role != "user":
                return _one(role, value)
            self.checks.append(~value.str.contains("\x00", literal=True))
            return self.stage(pl.when(value.str.contains(TRANSCRIPT_START)).then(_transcript(value, drop_cue=True))
                              .otherwise(_one(role, value)))
        if kind in ("message", "sg_message"):
            value = pl.concat_list(value)
        if kind in ("message", "messages"):
            return self.stage(value)
        if kind in ("sg_message", "sg_messages"):
            return self.stage(_sharegpt(value))
        raise NotFast(key)  # missing or of another kind: the per-record path says how

    def with_system(self, turns: pl.Expr) -> pl.Expr:
        """`formats._with_system`: a non-blank system text first."""
        if "system" not in self.kinds:
            return turns
        system = self.need("system", "text")
        spaces = system.str.contains(r"^[\s\x1c-\x1f]*$")  # str.strip()'s whitespace
        self.checks.append(~spaces | (system == ""))  # exotic spaces only: let Python decide
        return self.stage(pl.when(spaces).then(turns).otherwise(pl.concat_list(_one("system", system), turns)))

    def check(self, ok: pl.Expr) -> None:
        self.checks.append(ok)


def _strip_prompt(f: Frame, prompt: pl.Expr, turns: pl.Expr) -> pl.Expr:
    n = prompt.list.len()
    repeated = (turns.list.len() > n) & (turns.list.head(n) == prompt)
    return f.stage(pl.when(repeated).then(turns.list.slice(n)).otherwise(turns))


def _split_implicit(f: Frame, chosen: pl.Expr, rejected: pl.Expr) -> dict[str, pl.Expr]:
    for turns in (chosen, rejected):
        f.check((turns.list.len() >= 2) & (_role(turns, -1) == "assistant") & _good_text(_content(turns, -1)))
    prompt = f.stage(chosen.list.head(chosen.list.len() - 1))
    f.check(prompt == rejected.list.head(rejected.list.len() - 1))
    return {"prompt": prompt, "chosen": chosen.list.tail(1), "rejected": rejected.list.tail(1)}


def _extras(f: Frame) -> dict[str, pl.Expr]:
    return {k: f.col(k) for k in PAIR_EXTRAS}


def trl_pair(f: Frame) -> dict[str, pl.Expr]:
    prompt = f.messages("prompt", "user")
    chosen = _strip_prompt(f, prompt, f.messages("chosen", "assistant"))
    rejected = _strip_prompt(f, prompt, f.messages("rejected", "assistant"))
    return {**_extras(f), "prompt": prompt, "chosen": chosen, "rejected": rejected}


def ultrafeedback_binarized(f: Frame) -> dict[str, pl.Expr]:
    return {**trl_pair(f), "chosen_score": f.col("score_chosen"), "rejected_score": f.col("score_rejected")}


def trl_implicit(f: Frame) -> dict[str, pl.Expr]:
    pair = _split_implicit(f, f.messages("chosen", "assistant"), f.messages("rejected", "assistant"))
    return {**_extras(f), **pair}


def _pieces(f: Frame, key: str) -> pl.Expr:
    """A transcript split at its markers: "" (nothing before the first marker), then "role\x01content" per turn."""
    text = f.need(key, "text")
    f.check(~text.str.contains("\x00", literal=True))  # NUL marks the cuts
    pieces = f.stage(text.str.replace_many(MARKERS).str.split("\x00"))
    f.check((pieces.list.first() == "") & (pieces.list.len() >= 3))  # a marker first; a prompt and an answer
    return pieces


def _answer(f: Frame, pieces: pl.Expr) -> pl.Expr:
    last = pieces.list.last()
    f.check(last.str.starts_with("assistant\x01"))
    return _one("assistant", last.str.strip_prefix("assistant\x01").str.strip_prefix(" "))


def _same_prompt(f: Frame, chosen: pl.Expr, pieces: pl.Expr, key: str) -> pl.Expr:
    """The answer of `key` when its text is chosen's prompt text, then "\n\nAssistant:" and an answer with no
    marker: the same prompt turns, found without splitting it (other texts go to the per-record path)."""
    text = f.need(key, "text")
    f.check(~text.str.contains("\x00", literal=True))
    # where the last marker starts: its piece lost "\n\nAssistant:" (12 characters) for "assistant\x01" (10)
    cut = f.stage(chosen.str.len_chars() - pieces.list.last().str.len_chars() - 2)
    tail = text.str.slice(cut)
    answer = f.stage(tail.str.strip_prefix("\n\nAssistant:"))
    f.check(text.str.starts_with(chosen.str.head(cut)) & tail.str.starts_with("\n\nAssistant:")
            & ~answer.str.contains_any(list(MARKERS)))
    return _one("assistant", answer.str.strip_prefix(" "))


def hh_rlhf(f: Frame) -> dict[str, pl.Expr]:
    """`formats.hh_rlhf` on chosen's split text; rejected must hold the same prompt text (a turn that only parses
    alike, "Human:x" against "Human: x", is left to the per-record path)."""
    pieces = _pieces(f, "chosen")
    prompt = pieces.list.slice(1, pieces.list.len() - 2).list.eval(_turn())
    rejected = _same_prompt(f, pl.col("chosen"), pieces, "rejected")
    return {"prompt": prompt, "chosen": _answer(f, pieces), "rejected": rejected}


def sharegpt(f: Frame) -> dict[str, pl.Expr]:
    return {"prompt": f.with_system(f.messages("conversations", "user")),
            "chosen": f.messages("chosen", "assistant"), "rejected": f.messages("rejected", "assistant")}


def _label(f: Frame) -> pl.Expr:
    label = f.need("label", "bool")
    f.check(label.is_not_null())
    return label


def sharegpt_kto(f: Frame) -> dict[str, pl.Expr]:
    turns = f.with_system(f.messages("messages", "user"))
    f.check(turns.list.len() >= 2)
    return {"prompt": turns.list.head(turns.list.len() - 1), "completion": turns.list.tail(1), "label": _label(f)}


def trl_unpaired(f: Frame) -> dict[str, pl.Expr]:
    prompt = f.messages("prompt", "user")
    completion = _strip_prompt(f, prompt, f.messages("completion", "assistant"))
    return {"prompt": prompt, "completion": completion, "label": _label(f), "source": f.col("source")}


ADAPTERS: dict[str, Callable[[Frame], dict[str, pl.Expr]]] = {
    "trl-standard": trl_pair, "trl-conversational": trl_pair, "ultrafeedback-binarized": ultrafeedback_binarized,
    "trl-implicit": trl_implicit, "hh-rlhf": hh_rlhf, "sharegpt": sharegpt, "sharegpt-kto": sharegpt_kto,
    "trl-unpaired": trl_unpaired,
}
TYPED = {"source": "text", "pair_id": "text", "judges": "strings", "chosen_score": "number",
         "rejected_score": "number", "agreement": "number", "confidence": "number", "score_chosen": "number",
         "score_rejected": "number"}


def _record_checks(kind: str) -> list[pl.Expr]:
    """The Pydantic record's rules (`schema.PreferencePair`, `UnpairedExample`) over canonical columns."""
    prompt = pl.col("prompt")
    checks = [_good_turns(prompt), _role(prompt, -1).is_in(["user", "tool"])]
    for side in ("chosen", "rejected") if kind == "pairwise" else ("completion",):
        checks += [_good_turns(pl.col(side)), _role(pl.col(side), 0) == "assistant"]
    if kind == "pairwise":
        confidence = pl.col("confidence")
        checks.append(confidence.is_null() | ((confidence >= 0) & (confidence <= 1)))
    return checks


def _adapt(data: pl.DataFrame, fmt: Format, kinds: dict[str, str]) -> pl.DataFrame:
    """The canonical records of the parsed lines, and `_ok`: whether the per-record path would keep each
    exactly so (when not, it runs on that line and says why)."""
    f = Frame(data, kinds)
    for key, kind in TYPED.items():  # a score as text, say: Python's call
        if key in kinds:
            f.need(key, kind)
    columns = ADAPTERS[fmt.name](f)
    target = input_schema(fmt.kind)
    exprs = [columns.get(name, pl.lit(None)).cast(dtype).alias(name) for name, dtype in target.items()]
    frame = f.data.select(pl.col("_line"), *exprs, pl.all_horizontal(*f.checks).alias("_adapted"))
    if "judges" in target:  # absent judges are the model's default: none
        frame = frame.with_columns(pl.col("judges").fill_null(pl.lit([], dtype=pl.List(pl.String))))
    ok = pl.col("_adapted").fill_null(False) & pl.all_horizontal(_record_checks(fmt.kind)).fill_null(False)
    return collect(frame.with_columns(ok.alias("_ok")).drop("_adapted"))


# ---- reading ----------------------------------------------------------------------------------------------
def _head(lines: pl.DataFrame) -> list[Raw]:
    first = lines.filter(~pl.col("_blank")).head(SNIFF)
    return [_raw(line, number) for line, number in first.select("line", "_line").iter_rows()]


def _parse(lines: pl.DataFrame, kinds: dict[str, str], blob: bytes) -> pl.DataFrame:
    """The lines that have the shape, parsed by Polars (the whole file at once when every line has it)."""
    dtypes = {k: KINDS[kind][1] for k, kind in kinds.items()}
    shaped = lines.filter(pl.col("_shaped"))
    blanks = lines.filter(pl.col("_blank"))["line"]
    if shaped.height == lines.height - blanks.len() and (blanks.str.strip_chars(" \t\n\r") == "").all():
        text = blob  # read_ndjson skips blank lines (JSON whitespace only), as the per-record path does
    else:
        text = shaped.select(pl.col("line").str.strip_chars_end("\n").str.join("\n")).item().encode()
    data = pl.read_ndjson(text, schema=dtypes) if shaped.height else pl.DataFrame(schema=dtypes)
    return data.with_columns(shaped["_line"])


def read_lines(source: JsonLines, name: str, format: str | None, on_error: OnError) -> ReadResult | None:
    """`read_dataset` for a JSON Lines file; None when the fast path cannot read it (another format, not UTF-8,
    a first record of another shape): the caller then takes the per-record path."""
    text = _lines(source.blob)
    if text is None:
        return None
    lines = pl.DataFrame({"line": text}).with_row_index("_line", offset=1).with_columns(_blank(pl.col("line")))
    head = _head(lines)
    fmt = choose_format(head, format, name)
    first = next((r.data for r in head if r.data is not None), None)
    shape = _shape(first) if first is not None and fmt.name in ADAPTERS else None
    if shape is None:
        return None
    pattern, kinds = shape
    lines = collect(lines.lazy().with_columns((~pl.col("_blank") & pl.col("line").str.contains(pattern))
                                              .alias("_shaped")))
    try:
        frame = _adapt(_parse(lines, kinds, source.blob), fmt, kinds)
    except NotFast:
        return None
    good = frame.filter(pl.col("_ok")).drop("_ok")
    rest = lines.filter(~pl.col("_blank")).join(good.select("_line"), on="_line", how="anti", maintain_order="left")
    slow, drops = _per_record(rest, fmt, name, on_error)
    merged = pl.concat([good, slow.select(good.columns)]).sort("_line").drop("_line")
    frame = finish_frame(merged, fmt.kind, default_source=Path(name).name)
    rows_in = lines.height - int(lines["_blank"].sum())
    return ReadResult(frame, drops_frame(drops), fmt.name, fmt.kind, name, rows_in)


def _per_record(rest: pl.DataFrame, fmt: Format, name: str, on_error: OnError) -> tuple[pl.DataFrame, list[dict]]:
    """The lines the table could not vouch for, through the per-record path in line order: the rows it keeps
    (with their line, for the merge) and the ones it sets aside."""
    records: list[dict] = []
    drops: list[dict] = []
    kept: list[int] = []
    for line, number in rest.select("line", "_line").iter_rows():
        before = len(records)
        take(_raw(line, number), fmt, name, on_error, records, drops)
        kept += [number] * (len(records) - before)
    frame = records_frame(records, fmt.kind).with_columns(pl.Series("_line", kept, dtype=pl.UInt32))
    return frame, drops
