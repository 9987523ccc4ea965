"""The catalogue: every named check, its severity, the kinds of data it applies to, what it needs.

Errors are data that would train wrongly or not at all; warnings are figures a person should see
before training. `run_checks` runs the applicable ones in this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from prefdata.validators.checks import content, diversity, duplicates, judging, language, leakage, preference
from prefdata.validators.inputs import Inputs
from prefdata.validators.result import CheckResult, Severity, skipped

ALL = ("pairwise", "unpaired", "prompts")


@dataclass(frozen=True)
class Check:
    name: str
    severity: Severity
    run: Callable[[Inputs], CheckResult]
    kinds: tuple[str, ...]
    description: str
    needs: str | None = None  # an Inputs field that must be present (else skipped)


CATALOGUE: tuple[Check, ...] = (
    Check("schema", "error", content.schema_roles, ALL, "every record readable; columns and roles as TRL expects"),
    Check("rows", "error", preference.rows, ALL, "at least `required_rows` (1) rows: an empty dataset fails"),
    Check("empty_text", "error", content.empty_text, ALL, "no empty or whitespace-only turn"),
    Check("chosen_differs", "error", content.chosen_differs, ("pairwise",), "chosen differs from rejected"),
    Check("exact_duplicates", "warning", duplicates.exact_duplicates, ALL, "share of repeated rows"),
    Check("near_duplicates", "warning", duplicates.near_duplicates, ALL, "share of near-duplicate rows"),
    Check("length_bias", "warning", preference.length_bias, ("pairwise",), "chosen is not just the longer answer"),
    Check("margin", "warning", preference.margin, ("pairwise",), "share of pairs below the minimum margin"),
    Check("size", "warning", preference.size, ALL, "enough rows to train on"),
    Check("split_leakage", "error", leakage.split_leakage, ALL, "no prompt in both train and test"),
    Check("encoding", "warning", content.encoding, ALL, "no mojibake, control characters or U+FFFD"),
    Check("judge_parse_failures", "warning", judging.judge_parse_failures, ("pairwise",),
          "judge verdicts that could not be read", needs="judgments"),
    Check("judge_position_consistency", "warning", judging.judge_position_consistency, ("pairwise",),
          "same winner in both orders", needs="judgments"),
    Check("kto_label_balance", "warning", preference.kto_label_balance, ("unpaired",), "desirable vs undesirable"),
    Check("prompt_distinct_ngrams", "warning", diversity.prompt_distinct_ngrams, ALL, "prompt wording varies"),
    Check("prompt_near_duplicates", "warning", diversity.prompt_near_duplicates, ALL,
          "prompts are not reworded copies"),
    Check("prompt_categories", "warning", diversity.prompt_categories, ALL, "no category dominates the prompts"),
    Check("mixed_language", "warning", language.mixed_language, ("pairwise", "unpaired"),
          "answers in the prompt's language (with a `language` column)"),
)
NAMES = tuple(c.name for c in CATALOGUE)
# Checks that cannot run on data that failed these (columns or text missing) are skipped.
STRUCTURAL = ("schema",)
COUNTS = ("rows", "size")  # judged on the row count itself, which is data even when it is 0
READ = ("schema", "empty_text")  # on no rows, these still judge the records the reader set aside


def _set_aside(inputs: Inputs) -> bool:
    return inputs.read_dropped is not None and inputs.read_dropped.height > 0


def run_checks(inputs: Inputs, only: tuple[str, ...] | None = None) -> list[CheckResult]:
    results: list[CheckResult] = []
    for check in CATALOGUE:
        if only is not None and check.name not in only:
            continue
        if inputs.kind not in check.kinds:
            continue
        if check.needs and getattr(inputs, check.needs) is None:
            results.append(skipped(check.name, check.severity, f"no {check.needs}"))
            continue
        if inputs.rows == 0 and check.name not in COUNTS and not (check.name in READ and _set_aside(inputs)):
            results.append(skipped(check.name, check.severity, "no rows"))
            continue
        results.append(check.run(inputs))
        if check.name in STRUCTURAL and "columns" in results[-1].figures:
            break  # missing or mistyped columns: nothing else can be computed
    return results
