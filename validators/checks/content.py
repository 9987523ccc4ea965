"""Is every row a well-formed record: columns and roles, no empty text, chosen unlike rejected, clean encoding."""

from __future__ import annotations

import polars as pl

from prefdata.io.reader import TABLES
from validators.inputs import Inputs, contents, dropped_examples, example_rows, joined_text
from validators.result import CheckResult

# Reader drop reasons that mean "not a well-formed record"; `empty_text` has its own check.
EMPTY = "empty_text"
CONTROL = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]"  # C0 and C1 controls other than tab, newline, return
REPLACEMENT = "\ufffd"
NON_ASCII = r"[^\x00-\x7F]"


def _roles(column: str) -> pl.Expr:
    return pl.col(column).list.eval(pl.element().struct.field("role"))


def _role_problems(kind: str, columns: tuple[str, ...]) -> pl.Expr:
    """A text per row naming its first role problem, null when there is none."""
    valid = ["system", "user", "assistant", "tool"]
    checks: list[tuple[pl.Expr, str]] = []
    for column in columns:
        checks.append((pl.col(column).is_null() | (pl.col(column).list.len() == 0), f"{column} has no turns"))
        checks.append((~_roles(column).list.eval(pl.element().is_in(valid)).list.all(),
                       f"{column} has an unknown role"))
    if "prompt" in columns:
        checks.append((~_roles("prompt").list.last().is_in(["user", "tool"]), "prompt does not end with a user turn"))
    for column in ("chosen", "rejected", "completion"):
        if column in columns:
            checks.append((_roles(column).list.first() != "assistant", f"{column} does not start with assistant"))
    expr = pl.lit(None, dtype=pl.String)
    for condition, text in reversed(checks):
        expr = pl.when(condition.fill_null(True)).then(pl.lit(text)).otherwise(expr)
    return expr


def schema_roles(inp: Inputs) -> CheckResult:
    table = TABLES[inp.kind]
    wrong = {name: str(inp.frame.schema.get(name)) for name, dtype in table.items()
             if name in ("prompt", "chosen", "rejected", "completion", "label")
             and inp.frame.schema.get(name) != dtype}
    if wrong:
        return CheckResult("schema", "error", False, len(wrong), 0,
                           "missing or mistyped columns: " + ", ".join(f"{k} ({v})" for k, v in wrong.items()),
                           figures={"columns": wrong})
    problem = _role_problems(inp.kind, inp.conversations)
    bad = int(inp.frame.select(problem.is_not_null().sum()).item())
    unreadable = inp.dropped_by(exclude={EMPTY})
    examples = dropped_examples(unreadable, inp.examples)
    examples += example_rows(inp.frame, problem.is_not_null(), inp.examples - len(examples), problem=problem)
    total = bad + unreadable.height
    reasons = dict(unreadable.group_by("reason").len().sort("reason").iter_rows()) if unreadable.height else {}
    return CheckResult("schema", "error", total == 0, total, 0,
                       f"{unreadable.height} records unreadable, {bad} rows with a role problem",
                       figures={"unreadable": reasons, "role_problems": bad}, examples=examples)


def empty_text(inp: Inputs) -> CheckResult:
    blank = pl.any_horizontal(
        [contents(c).list.eval(pl.element().is_null() | (pl.element().str.strip_chars() == "")).list.any()
         for c in inp.conversations])
    in_frame = int(inp.frame.select(blank.sum()).item())
    at_read = inp.dropped_by({EMPTY})
    total = in_frame + at_read.height
    examples = dropped_examples(at_read, inp.examples)
    examples += example_rows(inp.frame, blank, inp.examples - len(examples))
    return CheckResult("empty_text", "error", total == 0, total, 0,
                       f"{total} rows with an empty or whitespace-only turn ({at_read.height} set aside on reading)",
                       examples=examples)


def chosen_differs(inp: Inputs) -> CheckResult:
    """chosen = rejected (after curation's normalisation) teaches nothing: an error."""
    same = inp.dedupe.dropped.filter(pl.col("reason") == "identical_chosen_rejected")
    return CheckResult("chosen_differs", "error", same.height == 0, same.height, 0,
                       f"{same.height} pairs whose chosen equals rejected",
                       examples=dropped_examples(same, inp.examples))


def _mojibake(texts: pl.Series) -> pl.Series:
    """ftfy's detector, run only on texts holding a non-ASCII character (the only ones that can match)."""
    from ftfy.badness import is_bad

    suspect = texts.str.contains(NON_ASCII).fill_null(False)
    flags = pl.Series([False] * len(texts), dtype=pl.Boolean)
    if suspect.any():
        idx = suspect.arg_true()
        flags = flags.scatter(idx, pl.Series([is_bad(t) for t in texts.gather(idx)], dtype=pl.Boolean))
    return flags


def encoding(inp: Inputs) -> CheckResult:
    text = pl.concat_str([joined_text(c) for c in inp.conversations], separator="\n\n", ignore_nulls=True)
    flagged = inp.frame.select(
        text.str.contains(CONTROL).fill_null(False).alias("control"),
        text.str.contains(REPLACEMENT, literal=True).fill_null(False).alias("replacement"),
        text.map_batches(_mojibake, return_dtype=pl.Boolean).alias("mojibake"),
    )
    problem = (pl.when(pl.col("control")).then(pl.lit("control character"))
               .when(pl.col("replacement")).then(pl.lit("U+FFFD"))
               .when(pl.col("mojibake")).then(pl.lit("mojibake")))
    framed = pl.concat([inp.frame, flagged.with_columns(problem.alias("_problem"))], how="horizontal")
    bad = framed["_problem"].is_not_null()
    share = float(bad.mean()) if inp.rows else 0.0
    counts = {k: int(flagged[k].sum()) for k in ("control", "replacement", "mojibake")}
    limit = inp.thresholds.max_encoding_problem_share
    return CheckResult("encoding", "warning", share <= limit, round(share, 4), f"<= {limit}",
                       f"{int(bad.sum())} rows with mojibake, control characters or U+FFFD", figures=counts,
                       examples=example_rows(framed, pl.col("_problem").is_not_null(), inp.examples,
                                             problem=pl.col("_problem"), text=_snippet(text, pl.col("_problem"))))


def _snippet(text: pl.Expr, problem: pl.Expr) -> pl.Expr:
    """The text around the first sign of the row's problem, so a person can see it."""
    at = (pl.when(problem == "control character").then(text.str.find(CONTROL))
          .when(problem == "U+FFFD").then(text.str.find(REPLACEMENT, literal=True))
          .otherwise(text.str.find(NON_ASCII)))
    return text.str.slice((at.fill_null(0) - 40).clip(lower_bound=0), 100)
