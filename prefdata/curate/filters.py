"""Row filters: score margin, judge agreement, judge confidence, answer and prompt length, answer length ratio,
the prompt's language.

Each bound is optional; a row failing several bounds is dropped once, with the first reason in the
order below (a missing or non-finite margin/agreement counts as failing: the bound is a promise about what is
kept). Confidence is the exception: a null one means the judges' backends gave no token probabilities, not
an unsure judge, so those rows are kept, and `unrated` says how many (the build's counts and `prefdata filter`
report it).
"""

from __future__ import annotations

import polars as pl

from prefdata import schema
from prefdata.curate.config import FilterConfig
from prefdata.curate.length_bias import text_lengths
from prefdata.curate.text import all_text, final_text, pair_id_column

STAGE = "filter"


def _lengths(frame: pl.DataFrame, config: FilterConfig) -> pl.DataFrame:
    texts = frame.select(final_text("chosen").alias("c"), final_text("rejected").alias("r"),
                         all_text("prompt").alias("p"))
    wanted = ["c", "r"] + (["p"] if config.max_prompt_length else [])
    return pl.DataFrame({k: text_lengths(texts[k], config.unit, config.tokenizer) for k in wanted})


def _missing(column: str) -> pl.Expr:
    """Null, NaN or ±inf: no usable number (NaN would pass `< bound`, +inf every bound)."""
    return ~pl.col(column).is_finite().fill_null(False)


def _checks(config: FilterConfig) -> list[tuple[str, pl.Expr, str | pl.Expr]]:
    """(reason, failing-row expression, detail) for each bound the config sets, in priority order."""
    checks = []
    if config.min_margin is not None:
        checks.append(("no_margin", _missing("margin"), "pair has no finite score margin"))
        checks.append(("margin_below_min", pl.col("margin") < config.min_margin, f"margin < {config.min_margin}"))
    if config.min_agreement is not None:
        checks.append(("no_agreement", _missing("agreement"), "pair has no finite judge agreement"))
        checks.append(("agreement_below_min", pl.col("agreement") < config.min_agreement,
                       f"agreement < {config.min_agreement}"))
    if config.min_confidence is not None:
        checks.append(("low_confidence", pl.col("confidence") < config.min_confidence,
                       f"confidence < {config.min_confidence}"))
    shorter, longer = pl.min_horizontal("_c", "_r"), pl.max_horizontal("_c", "_r")
    if config.min_length is not None:
        checks.append(("too_short", shorter < config.min_length, f"answer < {config.min_length} {config.unit}"))
    if config.max_length is not None:
        checks.append(("too_long", longer > config.max_length, f"answer > {config.max_length} {config.unit}"))
    if config.max_prompt_length is not None:
        checks.append(("prompt_too_long", pl.col("_p") > config.max_prompt_length,
                       f"prompt > {config.max_prompt_length} {config.unit}"))
    if config.max_length_ratio is not None:
        ratio = longer / pl.max_horizontal(shorter, 1)
        checks.append(("length_ratio", ratio > config.max_length_ratio,
                       f"longer/shorter answer > {config.max_length_ratio}"))
    if config.language is not None:
        wanted = ", ".join(config.language)
        if not config.keep_undetermined:
            checks.append(("language_undetermined", pl.col("language").is_null(), "no language could be told"))
        checks.append(("language", ~pl.col("language").is_in(config.language),
                       pl.format("prompt in {}, not {}", pl.col("language"), pl.lit(wanted))))
    return checks


def unrated(frame: pl.DataFrame) -> int:
    """Rows a `min_confidence` bound keeps because they have no confidence (null or NaN)."""
    if "confidence" not in frame.columns:
        return frame.height
    return frame.select(~pl.col("confidence").is_finite().fill_null(False)).to_series().sum()


def filter_pairs(frame: pl.DataFrame, config: FilterConfig | None = None, ctx=None) -> schema.StageResult:
    config = config or FilterConfig()
    borrowed = []  # a column added only to test a bound, not written out
    if config.min_confidence is not None and "confidence" not in frame.columns:
        frame, borrowed = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("confidence")), ["confidence"]
    if config.language is not None:  # a column the data keeps: each pair's prompt language
        from prefdata.curate.language import prompt_languages

        frame = frame.with_columns(prompt_languages(frame).alias("language"))
    checks = _checks(config)
    if not checks:
        return schema.StageResult(frame, schema.empty(schema.DROPPED))
    needs_length = any(c[0] in ("too_short", "too_long", "prompt_too_long", "length_ratio") for c in checks)
    lengths = _lengths(frame, config).rename(lambda c: f"_{c}") if needs_length else None
    marked = pl.concat([frame, lengths], how="horizontal") if lengths is not None else frame
    reason = pl.lit(None, dtype=pl.String)
    detail = pl.lit(None, dtype=pl.String)
    for name, failing, why in reversed(checks):  # the first failing check wins
        why = why if isinstance(why, pl.Expr) else pl.lit(why)
        reason = pl.when(failing.fill_null(False)).then(pl.lit(name)).otherwise(reason)
        detail = pl.when(failing.fill_null(False)).then(why).otherwise(detail)
    marked = marked.with_columns(reason.alias("_reason"), detail.alias("_detail"))
    helpers = [c for c in marked.columns if c not in frame.columns] + borrowed
    out = marked.filter(pl.col("_reason").is_not_null())
    return schema.StageResult(
        marked.filter(pl.col("_reason").is_null()).drop(helpers),
        schema.dropped_rows(out.drop(helpers), STAGE, out["_reason"], id_column=pair_id_column(frame),
                            detail=out["_detail"]))
