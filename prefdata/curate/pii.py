"""PII: e-mail addresses, phone numbers, credit-card and IBAN numbers, IP addresses in prompts and answers,
redacted, dropped or flagged (`pip install 'prefdata[pii]'`).

Detection is presidio-analyzer's pattern recognizers, called one by one (no NLP engine, so no spaCy model):
e-mail (a regex, then the domain must end in a public suffix: tldextract's bundled list, never fetched), phone
(Google's libphonenumber, `phonenumbers`: a number must be valid in one of presidio's regions: US, GB, DE, FR,
IL, IN, CA, BR), credit card (Luhn checksum), IBAN (per-country format and the mod-97 check), IP (v4 and v6,
checked by `ipaddress`). Names are not found: presidio finds them with a spaCy NER model, and no English model
can be had from PyPI from its makers (`python benchmarks/pii_scan.py` measures presidio beside scrubadub and,
given a spaCy model folder, what the NER finds).

Each turn of the `fields` is scanned on its own. A text with none of `@`, `:` or a digit cannot hold any of
these entities and is not handed to presidio (most texts). A text longer than `max_chars`, or one presidio
fails on, is not scanned: with redact or drop its pair is dropped with reason `pii_unscanned` (nothing can be
promised about it); with flag it is kept with a null `pii`.

The `pii` column lists what was found in each pair: `{field, turn, entity, start, end, score}`, with offsets
into the original text; never the text found.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import NamedTuple

import polars as pl

from prefdata import schema
from prefdata.curate.config import PII_ENTITIES, PiiConfig
from prefdata.curate.text import pair_id_column
from prefdata.errors import PrefdataError

STAGE = "pii"
CANDIDATE = r"[@:\d]"  # a text without any of these holds no e-mail, number or IP address
INSTALL = "PII detection needs presidio-analyzer: pip install 'prefdata[pii]'"
CONTEXT_CHARS = 40  # how far before a number a context word ("phone", "card"...) is looked for
# A phone number written as one: +country digits, or groups of 2-5 digits (the first may be in parentheses) joined
# by one space, dot or dash, three groups at least. Bare digit runs that libphonenumber calls valid for some
# region (sums, timestamps, ids: most of what it finds in the shared data) pass only with a context word.
PHONE_SHAPE = re.compile(r"\+\d[\d\s().-]{6,}|\(\d{1,4}\)[\s.-]?\d{2,5}(?:[\s.-]\d{2,5})+|\d{2,5}(?:[\s.-]\d{2,5}){2,}")
# A card number as printed: four groups of four (the last up to seven), or Amex's 4-6-5, one separator throughout.
CARD_SHAPE = re.compile(r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{5}")
SHAPES = {"PHONE_NUMBER": PHONE_SHAPE, "CREDIT_CARD": CARD_SHAPE}
CONTEXT = {entity: re.compile(r"\b(?:" + "|".join(words) + r")\b") for entity, words in {
    "PHONE_NUMBER": ("phone", "telephone", "tel", "cell", "cellphone", "mobile", "call", "fax", "whatsapp"),
    "CREDIT_CARD": ("credit", "debit", "card", "visa", "mastercard", "amex", "discover", "jcb", "diners", "maestro",
                    "cc")}.items()}
SPAN = pl.Struct({"field": pl.String, "turn": pl.Int32, "entity": pl.String, "start": pl.Int64, "end": pl.Int64,
                  "score": pl.Float64})


class Span(NamedTuple):
    start: int
    end: int
    entity: str
    score: float


class Unscanned(Exception):
    """A text that was not scanned, and why."""


@functools.cache
def _recognizers() -> dict[str, object]:
    """Entity name -> presidio recognizer. Importing presidio_analyzer takes seconds (it imports spaCy, and
    transformers where installed): done once, on first use."""
    try:
        import tldextract
        from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer, IbanRecognizer,
                                                              IpRecognizer, PhoneRecognizer)
    except ImportError:
        raise PrefdataError(INSTALL) from None
    offline = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled suffix list: no network

    class OfflineEmail(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:  # the domain after @ (presidio checks the whole
            return offline(pattern_text.rpartition("@")[2]).fqdn != ""  # match: a URL holding `@` passed)

    found = {"EMAIL_ADDRESS": OfflineEmail(), "PHONE_NUMBER": PhoneRecognizer(), "CREDIT_CARD": CreditCardRecognizer(),
             "IBAN_CODE": IbanRecognizer(), "IP_ADDRESS": IpRecognizer()}
    assert set(found) == set(PII_ENTITIES)
    return found


def plausible(text: str, start: int, end: int, entity: str) -> bool:
    """Phone and card numbers (checksum or not) must look written as one, or follow a context word."""
    shape = SHAPES.get(entity)
    if shape is None or shape.fullmatch(text, start, end):
        return True
    return CONTEXT[entity].search(text[max(0, start - CONTEXT_CHARS):start].lower()) is not None


def resolve(spans: list[Span]) -> list[Span]:
    """Overlapping spans: the higher score wins, then the longer span; the result is in text order."""
    kept: list[Span] = []
    for span in sorted(spans, key=lambda s: (-s.score, s.start - s.end, s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in kept):
            kept.append(span)
    return sorted(kept)


def scan(text: str, entities: tuple[str, ...] = PII_ENTITIES, score_threshold: float = 0.3,
         max_chars: int = 100_000) -> list[Span]:
    """The PII spans in one text. Raises Unscanned for a text over max_chars or one presidio fails on."""
    if len(text) > max_chars:
        raise Unscanned(f"{len(text):,} characters, over max_chars {max_chars:,}")
    recognizers = _recognizers()
    spans = []
    try:
        for entity in entities:
            for result in recognizers[entity].analyze(text, [entity], None):
                if result.score >= score_threshold and plausible(text, result.start, result.end, entity):
                    spans.append(Span(result.start, result.end, result.entity_type, round(float(result.score), 4)))
    except Exception as exc:  # noqa: BLE001 - hostile text: one row set aside, never the run stopped
        raise Unscanned(f"presidio failed: {type(exc).__name__}") from None
    return resolve(spans)


def redact(text: str, spans: list[Span]) -> str:
    """`text` with each span replaced by `<ENTITY>`; everything else byte for byte."""
    parts, at = [], 0
    for span in spans:
        parts += [text[at:span.start], f"<{span.entity}>"]
        at = span.end
    return "".join(parts + [text[at:]])


def _turns(frame: pl.DataFrame, field: str) -> pl.DataFrame:
    """One row per turn of a message-list column (or per text of a string column): _row, turn, text."""
    rows = pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row")
    if frame.schema[field] == pl.String:
        return frame.select(rows, pl.lit(0, dtype=pl.Int32).alias("turn"), pl.col(field).alias("text"))
    turns = frame.select(rows, pl.col(field)).explode(field, empty_as_null=False, keep_nulls=False)
    return turns.select("_row", pl.int_range(pl.len(), dtype=pl.Int32).over("_row").alias("turn"),
                        pl.col(field).struct.field("content").alias("text"))


class Found(NamedTuple):
    spans: dict[int, list[dict]]  # row -> the spans found in it (rows with none left out)
    unscanned: dict[int, str]  # row -> why one of its texts was not scanned
    redacted: dict[tuple[str, int], dict[int, str]]  # (field, row) -> turn -> redacted text


def find(frame: pl.DataFrame, config: PiiConfig) -> Found:
    """Scan every turn of the config's fields; texts that cannot hold an entity are skipped in Polars."""
    _recognizers()  # the install check before any work
    entities = tuple(config.entities)
    found = Found({}, {}, {})
    for field in config.fields:
        turns = _turns(frame, field).filter(pl.col("text").str.contains(CANDIDATE))
        for row, turn, text in turns.iter_rows():
            try:
                spans = scan(text, entities, config.score_threshold, config.max_chars)
            except Unscanned as why:
                found.unscanned.setdefault(row, f"{field} turn {turn}: {why}")
                continue
            if spans:
                found.spans.setdefault(row, []).extend(
                    {"field": field, "turn": turn, "entity": s.entity, "start": s.start, "end": s.end,
                     "score": s.score} for s in spans)
                found.redacted.setdefault((field, row), {})[turn] = redact(text, spans)
    return found


def _apply(frame: pl.DataFrame, redacted: dict[tuple[str, int], dict[int, str]]) -> pl.DataFrame:
    """Write the redacted texts back into their turns, by the original row number `_i` (only the rows that changed
    are touched; rows no longer in `frame` are left out)."""
    for field in sorted({field for field, _ in redacted}):
        rows = sorted(row for name, row in redacted if name == field)
        old = frame.select("_i", field).join(pl.DataFrame({"_i": rows}, schema={"_i": pl.UInt32}), on="_i")
        values = {}
        for row, value in old.iter_rows():
            new = redacted[(field, row)]
            values[row] = new[0] if frame.schema[field] == pl.String else [
                {**message, "content": new.get(turn, message["content"])} for turn, message in enumerate(value)]
        changed = pl.DataFrame({"_i": pl.Series(list(values), dtype=pl.UInt32),
                                "_new": pl.Series(list(values.values()), dtype=frame.schema[field])})
        frame = (frame.join(changed, on="_i", how="left", maintain_order="left")
                 .with_columns(pl.coalesce("_new", field).alias(field)).drop("_new"))
    return frame


def _detail(spans: list[dict]) -> str:
    """What a dropped pair held: entity types with counts, and where; never the text found."""
    counts = Counter(span["entity"] for span in spans)
    fields = sorted({span["field"] for span in spans}, key=("prompt", "chosen", "rejected").index)
    return ", ".join(f"{entity} x{n}" for entity, n in sorted(counts.items())) + " in " + ", ".join(fields)


def pii(frame: pl.DataFrame, config: PiiConfig | None = None, ctx=None) -> schema.StageResult:
    config = config or PiiConfig()
    found = find(frame, config)
    rows = pl.int_range(pl.len(), dtype=pl.UInt32).alias("_i")
    hits = pl.DataFrame({"_i": pl.Series(list(found.spans), dtype=pl.UInt32),
                         "_spans": pl.Series(list(found.spans.values()), dtype=pl.List(SPAN)),
                         "_detail": pl.Series([_detail(spans) for spans in found.spans.values()], dtype=pl.String)})
    unscanned = pl.DataFrame({"_i": pl.Series(list(found.unscanned), dtype=pl.UInt32),
                              "_why": pl.Series(list(found.unscanned.values()), dtype=pl.String)})
    marked = (frame.with_columns(rows).join(hits, on="_i", how="left", maintain_order="left")
              .join(unscanned, on="_i", how="left", maintain_order="left")
              .with_columns(pl.when(pl.col("_why").is_null())
                            .then(pl.col("_spans").fill_null(pl.lit([], dtype=pl.List(SPAN)))).alias("pii")))
    helpers = ["_i", "_spans", "_detail", "_why"]
    if config.action == "flag":  # everything kept; a pair not scanned whole has a null `pii`
        return schema.StageResult(marked.drop(helpers), schema.empty(schema.DROPPED))
    set_aside = pl.col("_why").is_not_null()
    holding = ~set_aside & pl.col("_spans").is_not_null() if config.action == "drop" else pl.lit(False)
    id_column = pair_id_column(frame)
    out, bad = marked.filter(set_aside), marked.filter(holding)
    dropped = pl.concat([
        schema.dropped_rows(out.drop(helpers), STAGE, "pii_unscanned", id_column=id_column, detail=out["_why"]),
        schema.dropped_rows(bad.drop(helpers), STAGE, "pii", id_column=id_column, detail=bad["_detail"]),
    ])
    kept = marked.filter(~set_aside & ~holding)
    if config.action == "redact":
        kept = _apply(kept, found.redacted)
    else:
        kept = kept.drop("pii")
    return schema.StageResult(kept.drop(helpers), dropped)


def figures(config: PiiConfig, result: schema.StageResult) -> dict:
    """What the step found, per entity type (spans and pairs), for the manifest and the card: from the kept
    rows' `pii` column and the `pii` column inside the records of the pairs it dropped."""
    lists = [result.kept["pii"]] if "pii" in result.kept.columns else []
    mine = result.dropped.filter((pl.col("stage") == STAGE) & (pl.col("reason") == "pii"))
    if mine.height:
        lists.append(mine["record"].str.json_decode(pl.Struct({"pii": pl.List(SPAN)})).struct.field("pii"))
    spans = pl.concat(lists).to_frame("pii").with_row_index("_pair").explode("pii").drop_nulls("pii") if lists \
        else pl.DataFrame(schema={"_pair": pl.UInt32, "pii": SPAN})
    spans = spans.unnest("pii")
    per_entity = spans.group_by("entity").agg(pl.len().alias("spans"), pl.col("_pair").n_unique().alias("pairs"))
    unscanned = (result.dropped["reason"] == "pii_unscanned").sum() + (
        result.kept["pii"].is_null().sum() if "pii" in result.kept.columns else 0)
    return {"action": config.action, "pairs_with_pii": spans["_pair"].n_unique(),
            "entities": {entity: {"spans": n, "pairs": p} for entity, n, p in per_entity.sort("entity").iter_rows()},
            "unscanned": int(unscanned)}
