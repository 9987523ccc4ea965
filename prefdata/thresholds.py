"""Thresholds of the check catalogue: defaults here, overridden by a spec's `validation:` section or the CLI.

Only Pydantic is imported, so that a spec can hold these without importing Polars.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a NaN threshold would pass every check

    required_rows: int = Field(1, ge=1, description="Fewer rows than this is an error: nothing (or too little) "
                                                    "to train on. An empty dataset never passes.")
    min_pairs: int = Field(1000, ge=0, description="Fewer rows than this is a warning (practitioners' minimum).")
    max_exact_duplicate_rate: float = Field(0.0, ge=0, le=1, description="Share of repeated rows allowed.")
    max_near_duplicate_rate: float = Field(0.05, ge=0, le=1,
                                           description="Share of rows that near-duplicate an earlier row.")
    near_duplicate_threshold: float = Field(0.8, gt=0, le=1, description="Jaccard similarity of word 5-grams.")
    max_chosen_longer: float = Field(0.65, ge=0, le=1,
                                     description="Share of pairs whose chosen answer is longer (length bias).")
    min_chosen_longer: float = Field(0.35, ge=0, le=1,
                                     description="Below this the bias runs the other way (shorter wins).")
    max_length_correlation: float = Field(0.3, ge=0, le=1,
                                          description="Largest |correlation| of length difference and preference.")
    min_margin: float | None = Field(None, description="Margin below which a pair is weak (default: the spec's).")
    max_low_margin_share: float = Field(0.1, ge=0, le=1, description="Share of pairs allowed below min_margin.")
    max_encoding_problem_share: float = Field(0.0, ge=0, le=1,
                                              description="Share of rows with mojibake, control characters or "
                                                          "U+FFFD allowed.")
    max_parse_failure_rate: float = Field(0.05, ge=0, le=1, description="Judge verdicts that could not be read.")
    min_position_consistency: float = Field(0.7, ge=0, le=1,
                                            description="Comparisons judged in both orders with the same winner.")
    min_label_share: float = Field(0.25, ge=0, le=0.5, description="KTO: smaller class's share of the labels.")
    min_distinct_ngram_ratio: float = Field(0.2, ge=0, le=1,
                                            description="Distinct word bigrams / all word bigrams over prompts.")
    max_prompt_near_duplicate_rate: float = Field(0.1, ge=0, le=1,
                                                  description="Share of prompts near-duplicating an earlier one.")
    max_category_share: float = Field(0.5, ge=0, le=1, description="Largest share of one prompt category.")
    max_mixed_language_share: float = Field(0.02, ge=0, le=1, description="Share of pairs answering in another "
                                                                          "language than the prompt's.")
    max_truncated_share: float = Field(0.05, ge=0, le=1,
                                       description="Share of prompt + completion longer than max_length.")
    max_length: int = Field(1024, ge=1, description="Training max_length in tokens (TRL's DPOConfig default).")


def parse_setting(text: str) -> tuple[str, str]:
    """`name=value` from `--set`; the value is checked when the thresholds are built."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value.strip()
