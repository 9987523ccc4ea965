"""Mixed-language pairs: a prompt in one language answered in another (lingua; the `language` column that a
language filter writes). Only rows where both languages could be told count."""

from __future__ import annotations

import polars as pl

from prefdata.curate.text import final_text
from prefdata.validators.inputs import Inputs, example_rows, joined_text
from prefdata.validators.result import CheckResult, skipped

NAME = "mixed_language"


def mixed_language(inp: Inputs) -> CheckResult:
    if "language" not in inp.frame.columns:
        return skipped(NAME, "warning", "no `language` column (a filter with `language` writes it)")
    try:
        from prefdata.curate.language import detect
    except ImportError:  # pragma: no cover - the module itself has no heavy import
        return skipped(NAME, "warning", "language identification is not installed")
    answers = ("chosen", "rejected") if inp.kind == "pairwise" else ("completion",)
    try:
        found = pl.DataFrame({c: detect(inp.frame.select(final_text(c).alias(c)).to_series()) for c in answers})
    except Exception as exc:  # noqa: BLE001 - lingua missing: PrefdataError says how to install it
        return skipped(NAME, "warning", str(exc))
    prompt = inp.frame["language"]
    mixed = pl.any_horizontal([(found[c] != prompt).fill_null(False) for c in answers])
    flagged = int(inp.frame.select(mixed).to_series().sum())
    limit = inp.thresholds.max_mixed_language_share
    share = flagged / inp.rows if inp.rows else 0.0
    framed = inp.frame.with_columns(found.rename(lambda c: f"_{c}_language"))
    shown = {f"{c}_language": pl.col(f"_{c}_language") for c in answers}
    return CheckResult(NAME, "warning", share <= limit, round(share, 4), limit,
                       f"{flagged} of {inp.rows} pairs answer in another language than the prompt's",
                       figures={"rows": flagged, **{c: _top(found[c]) for c in answers}},
                       examples=example_rows(framed, mixed, inp.examples, prompt=joined_text("prompt"),
                                             language=pl.col("language"), **shown))


def _top(languages: pl.Series, n: int = 5) -> dict[str, int]:
    """The most common answer languages (undetermined as "unsure")."""
    counts = languages.fill_null("unsure").value_counts(sort=True).head(n)
    return dict(counts.iter_rows())
