"""Is every row a well-formed record: columns and roles, no empty text, chosen unlike rejected, clean encoding."""

from __future__ import annotations

import polars as pl

from prefdata.io.records import TABLES
from prefdata.validators import rows
from prefdata.validators.inputs import Inputs, dropped_examples, example_rows, flags
from prefdata.validators.result import CheckResult

EMPTY = "empty_text"  # the reader's drop reason for empty text; every other drop reason is a schema problem
TYPED = ("prompt", "chosen", "rejected", "completion", "label")


def schema_roles(inp: Inputs) -> CheckResult:
    table = TABLES[inp.kind]
    wrong = {name: str(inp.frame.schema.get(name)) for name, dtype in table.items()
             if name in TYPED and inp.frame.schema.get(name) != dtype}
    if wrong:
        return CheckResult("schema", "error", False, len(wrong), 0,
                           "missing or mistyped columns: " + ", ".join(f"{k} ({v})" for k, v in wrong.items()),
                           figures={"columns": wrong})
    problem = rows.role_problem(inp)
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
    blank = rows.blank(inp)
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
    same = flags(inp.frame, rows.identical(inp))
    count = int(same.sum())
    return CheckResult("chosen_differs", "error", count == 0, count, 0, f"{count} pairs whose chosen equals rejected",
                       examples=example_rows(inp.frame, same, inp.examples,
                                             chosen=pl.col("chosen").list.last().struct.field("content")))


def encoding(inp: Inputs) -> CheckResult:
    framed = inp.frame.with_columns(rows.encoding_problem(inp).alias("_problem"))
    problem = framed["_problem"]
    share = float(problem.is_not_null().mean()) if inp.rows else 0.0
    counts = {k: int((problem == k).sum()) for k in ("control character", "U+FFFD", "mojibake")}
    limit = inp.thresholds.max_encoding_problem_share
    return CheckResult("encoding", "warning", share <= limit, round(share, 4), f"<= {limit}",
                       f"{problem.is_not_null().sum()} rows with mojibake, control characters or U+FFFD",
                       figures=counts,
                       examples=example_rows(framed, pl.col("_problem").is_not_null(), inp.examples,
                                             problem=pl.col("_problem"),
                                             text=rows.problem_snippet(inp, pl.col("_problem"))))
