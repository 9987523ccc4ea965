"""Per-row flags behind the row-level checks. The catalogue counts them; the Great Expectations suite
expects on them, so both judge a row by the same rule.

Duplicates use curation's keys (`prefdata.curate.dedupe`: NFKC, whitespace, case) and its MinHash
near-duplicate clusters (`prefdata.curate.near_dedupe`).
"""

from __future__ import annotations

import functools

import polars as pl

from prefdata.curate.text import key_hash
from prefdata.schema import BLANK_TEXT
from prefdata.validators.inputs import Inputs, contents, joined_text

CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"  # C0 and C1 controls other than tab, newline, return
REPLACEMENT = "\ufffd"
ROLES = ["system", "user", "assistant", "tool"]
SHINGLED_CHARS = 100_000  # near-duplicate and n-gram checks read this much of each text


def _roles(column: str) -> pl.Expr:
    return pl.col(column).list.eval(pl.element().struct.field("role"))


def role_problem(inp: Inputs) -> pl.Expr:
    """A text naming the row's first role problem; null when there is none."""
    columns = inp.conversations
    rules: list[tuple[pl.Expr, str]] = []
    for column in columns:
        rules.append((pl.col(column).is_null() | (pl.col(column).list.len() == 0), f"{column} has no turns"))
        rules.append((~_roles(column).list.eval(pl.element().is_in(ROLES)).list.all(), f"{column} has an unknown role"))
    if "prompt" in columns:
        rules.append((~_roles("prompt").list.last().is_in(["user", "tool"]), "prompt does not end with a user turn"))
    for column in ("chosen", "rejected", "completion"):
        if column in columns:
            rules.append((_roles(column).list.first() != "assistant", f"{column} does not start with assistant"))
    expr = pl.lit(None, dtype=pl.String)
    for condition, text in reversed(rules):
        expr = pl.when(condition.fill_null(True)).then(pl.lit(text)).otherwise(expr)
    return expr


def blank(inp: Inputs) -> pl.Expr:
    """Some turn is empty, or only whitespace and invisible characters (the reader's rule: `schema.BLANK_TEXT`)."""
    return pl.any_horizontal(
        [contents(c).list.eval(pl.element().is_null() | pl.element().str.contains(BLANK_TEXT)).list.any()
         for c in inp.conversations]).fill_null(True)


def key_hashes(inp: Inputs) -> pl.DataFrame:
    """Curation's duplicate key of each conversation column (`curate.text.key_hash`: NFKC, case, whitespace),
    hashed once per validation: a 50 MB answer is normalised once, not once for every check comparing rows."""
    return inp.cached("key_hashes", lambda: pl.DataFrame({c: key_hash(inp.frame, c) for c in inp.conversations}))


def _identical(inp: Inputs) -> pl.Series:
    if inp.kind != "pairwise":
        return pl.repeat(False, inp.rows, eager=True)
    keys = key_hashes(inp)
    return (keys["chosen"] == keys["rejected"]).fill_null(False)


def identical(inp: Inputs) -> pl.Expr:
    """chosen equals rejected after curation's normalisation."""
    return pl.lit(_identical(inp).alias("identical"))


def exact_repeat(inp: Inputs) -> pl.Expr:
    """The row repeats an earlier row (curation's key). For pairs, as `dedupe.exact` counts them: among
    the pairs whose chosen differs from rejected."""
    keys = key_hashes(inp)
    if "label" in inp.frame.columns:
        keys = keys.with_columns(inp.frame["label"])
    candidates = ~_identical(inp)  # identical pairs never count as repeats
    order = pl.int_range(pl.len(), dtype=pl.UInt32)
    later = (keys.with_columns(order.alias("_row")).filter(candidates)
             .filter(~pl.struct(pl.exclude("_row")).is_first_distinct())["_row"])
    return pl.lit(pl.repeat(False, inp.rows, eager=True).scatter(later, True).alias("exact_repeat"))


def row_text(inp: Inputs) -> pl.Expr:
    return pl.concat_str([joined_text(c) for c in inp.conversations], separator="\n\n", ignore_nulls=True)


def near_repeat(texts: pl.Series, threshold: float) -> pl.Series:
    """The text is in a near-duplicate cluster with an earlier one, comparing the first `SHINGLED_CHARS`
    characters of each text (MinHash of one 50 MB answer alone took seconds; no text that long trains)."""
    from prefdata.curate.near_dedupe import near_duplicate_clusters

    if len(texts) == 0:
        return pl.Series([], dtype=pl.Boolean)
    return ~near_duplicate_clusters(texts.str.slice(0, SHINGLED_CHARS), threshold=threshold).is_first_distinct()


def _without_verbose_layout(pattern: str) -> str:
    """A Python `re.VERBOSE` pattern without its comments and layout whitespace. Rust's `(?x)` would also
    drop the spaces inside character classes, which Python keeps, so the layout is removed here instead."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            out.append(pattern[i:i + 2])
            i += 2
        elif in_class:
            in_class = c != "]"
            out.append(c)
            i += 1
        elif c == "[":
            start = i + 1 + (pattern[i + 1:i + 2] == "^")
            start += pattern[start:start + 1] == "]"  # a leading ] is a literal member
            out.append(pattern[i:start])
            i, in_class = start, True
        elif c == "#":
            i = pattern.find("\n", i) if "\n" in pattern[i:] else len(pattern)
        else:
            if c not in " \t\n\r\v\f":
                out.append(c)
            i += 1
    return "".join(out)


@functools.cache
def mojibake_pattern() -> str:
    """ftfy's mojibake detector (`ftfy.badness.is_bad` searches `BADNESS_RE`), for Polars' regex engine,
    so the check runs vectorised; a test holds it equal to `is_bad` on the shared data."""
    from ftfy.badness import BADNESS_RE

    return _without_verbose_layout(BADNESS_RE.pattern)


def encoding_problem(inp: Inputs) -> pl.Expr:
    """`control character`, `U+FFFD` or `mojibake` (the first that applies); null for clean text."""
    text = row_text(inp)
    return (pl.when(text.str.contains(CONTROL).fill_null(False)).then(pl.lit("control character"))
            .when(text.str.contains(REPLACEMENT, literal=True).fill_null(False)).then(pl.lit("U+FFFD"))
            .when(text.str.contains(mojibake_pattern()).fill_null(False)).then(pl.lit("mojibake")))


def problem_snippet(inp: Inputs, problem: pl.Expr) -> pl.Expr:
    """The text around the first sign of the row's problem, so a person can see it."""
    text = row_text(inp)
    at = (pl.when(problem == "control character").then(text.str.find(CONTROL))
          .when(problem == "U+FFFD").then(text.str.find(REPLACEMENT, literal=True))
          .otherwise(text.str.find(mojibake_pattern())))
    return text.str.slice((at.fill_null(0) - 40).clip(lower_bound=0), 100)


def leaked(inp: Inputs) -> pl.Expr:
    """The row's prompt (normalised, as `prompt_id` hashes it) is also in another split."""
    if inp.test is not None:
        return pl.col("prompt_id").is_in(inp.test["prompt_id"].implode())
    if "split" in inp.frame.columns:
        return pl.col("split").n_unique().over("prompt_id") > 1
    return pl.lit(False)
