"""Are the prompts varied: distinct word bigrams, near-duplicate prompts, the spread over categories."""

from __future__ import annotations

import polars as pl

from prefdata.validators import rows
from prefdata.validators.inputs import Inputs, joined_text, preview
from prefdata.validators.result import CheckResult, skipped


def _prompts(inp: Inputs) -> pl.DataFrame:
    """Each distinct prompt once (a prompt with several pairs counts once)."""
    return (inp.frame.select("prompt_id", joined_text("prompt").str.slice(0, rows.SHINGLED_CHARS).alias("text"))
            .unique("prompt_id", keep="first", maintain_order=True))


def distinct_ngram_ratio(texts: pl.Series, n: int = 2) -> tuple[float, int]:
    """Distinct word n-grams over all word n-grams (distinct-n), lower-cased."""
    words = pl.DataFrame({"w": texts.str.to_lowercase().str.extract_all(r"\w+")}).with_row_index("doc").explode("w")
    words = words.drop_nulls("w")
    parts = [pl.col("w").shift(-k).over("doc") for k in range(n)]
    grams = words.select(pl.concat_str(parts, separator=" ").alias("g")).drop_nulls()["g"]
    return (grams.n_unique() / len(grams) if len(grams) else 0.0), len(grams)


def prompt_distinct_ngrams(inp: Inputs) -> CheckResult:
    least = inp.thresholds.min_distinct_ngram_ratio
    ratio, total = distinct_ngram_ratio(_prompts(inp)["text"])
    if total == 0:
        return skipped("prompt_distinct_ngrams", "warning", "no prompt has two words")
    return CheckResult("prompt_distinct_ngrams", "warning", ratio >= least, round(ratio, 4), f">= {least}",
                       f"distinct-2 over {total} word bigrams of the distinct prompts", figures={"bigrams": total})


def prompt_near_duplicates(inp: Inputs) -> CheckResult:
    limit = inp.thresholds.max_prompt_near_duplicate_rate
    prompts = _prompts(inp)
    later = rows.near_repeat(prompts["text"], inp.thresholds.near_duplicate_threshold)
    rate = float(later.mean()) if prompts.height else 0.0
    examples = [{"prompt_id": r["prompt_id"], "prompt": preview(r["text"])}
                for r in prompts.filter(later).head(inp.examples).iter_rows(named=True)]
    return CheckResult("prompt_near_duplicates", "warning", rate <= limit, round(rate, 4), f"<= {limit}",
                       f"{int(later.sum())} of {prompts.height} distinct prompts near-duplicate an earlier one",
                       examples=examples)


def prompt_categories(inp: Inputs) -> CheckResult:
    column, limit = inp.category, inp.thresholds.max_category_share
    if not column or column not in inp.frame.columns:
        return skipped("prompt_categories", "warning", "no category column")
    counts = (inp.frame.unique("prompt_id", keep="first").group_by(pl.col(column).cast(pl.String))
              .len().sort("len", column, descending=[True, False]))
    total = int(counts["len"].sum())
    top_name, top = counts.row(0)
    share = top / total
    return CheckResult("prompt_categories", "warning", share <= limit, round(share, 4), f"<= {limit}",
                       f"{counts.height} categories; the largest, {top_name!r}, holds {share:.1%} of the prompts",
                       figures={"categories": counts.height,
                                "distribution": {str(k): v for k, v in counts.head(20).iter_rows()}})
