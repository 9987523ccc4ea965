"""The check catalogue: every check fails on planted or real problems and passes on clean data."""

from __future__ import annotations

import polars as pl
import pytest
from ftfy.badness import is_bad

from conftest import DPO_DEMO, HH, KTO_DEMO
from prefdata import schema
from prefdata.curate.dedupe import exact as exact_dedupe
from prefdata.curate.length_bias import length_bias_report
from prefdata.io import read_dataset
from prefdata.stats import compute
from prefdata.validators import rows
from prefdata.validators.api import make_thresholds, spec_thresholds, validate_frame
from prefdata.validators.catalogue import NAMES
from prefdata.validators.inputs import Inputs
from prefdata.thresholds import Thresholds
from validators_planted import pair_records, to_frame, unpaired_records


def check(frame: pl.DataFrame, name: str, kind: str = "pairwise", **kwargs):
    report = validate_frame(frame, kind, only=(name,), **kwargs)
    assert [c.name for c in report.checks] == [name]
    return report.checks[0]


@pytest.fixture(scope="module")
def clean() -> pl.DataFrame:
    return to_frame(pair_records(1200))


@pytest.fixture(scope="module")
def hh():
    return read_dataset(HH, on_error="skip")


@pytest.fixture(scope="module")
def dpo():
    return read_dataset(DPO_DEMO)


def test_clean_planted_data_passes_every_check(clean):
    report = validate_frame(clean, "pairwise")
    failed = [c.name for c in report.checks if not c.passed]
    assert failed == [] and report.passed
    assert {c.name for c in report.checks if not c.skipped} >= {
        "schema", "empty_text", "chosen_differs", "exact_duplicates", "near_duplicates", "length_bias", "size",
        "encoding", "prompt_distinct_ngrams", "prompt_near_duplicates"}
    # Checks that need something this data lacks say so instead of passing silently.
    assert {c.name for c in report.checks if c.skipped} == {
        "margin", "split_leakage", "judge_parse_failures", "judge_position_consistency", "prompt_categories",
        "mixed_language"}


def test_schema_fails_on_the_records_hh_rlhf_sets_aside(hh):
    result = check(hh.frame, "schema", read_dropped=hh.dropped)
    unreadable = hh.dropped.filter(pl.col("reason") != "empty_text")
    assert not result.passed and result.severity == "error"
    assert result.value == unreadable.height > 0
    assert result.figures["unreadable"] == {"prompt_mismatch": unreadable.height}
    assert result.examples[0]["row_id"] == unreadable["row_id"][0]


def test_schema_fails_on_planted_wrong_roles(clean):
    records = pair_records(20)
    records[3]["prompt"] = [{"role": "assistant", "content": "I speak first"}]
    records[7]["chosen"] = [{"role": "user", "content": "not an answer"}]
    result = check(to_frame(records), "schema")
    assert not result.passed and result.value == 2
    assert [(e["row"], e["problem"]) for e in result.examples] == [
        (4, "prompt does not end with a user turn"), (8, "chosen does not start with assistant")]
    assert check(clean, "schema").passed


def test_schema_fails_on_a_missing_column_and_stops(clean):
    report = validate_frame(clean.drop("rejected"), "pairwise")
    assert [c.name for c in report.checks] == ["schema"]
    assert not report.passed and "rejected" in report.checks[0].figures["columns"]


def test_empty_text_counts_reader_drops_and_planted_blanks(hh, clean):
    result = check(hh.frame, "empty_text", read_dropped=hh.dropped)
    assert not result.passed and result.value == hh.drop_counts()["empty_text"]
    records = pair_records(30)
    records[5]["rejected"] = [{"role": "assistant", "content": "  \n "}]
    records[9]["prompt"] = [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}]
    planted = check(to_frame(records), "empty_text")
    assert planted.value == 2 and [e["row"] for e in planted.examples] == [6, 10]
    assert check(clean, "empty_text").passed


def test_chosen_equal_to_rejected_is_an_error_counted_as_curation_counts_it(clean):
    records = pair_records(40)
    records[2]["rejected"] = [{"role": "assistant", "content": "  " + records[2]["chosen"][0]["content"].upper()}]
    frame = to_frame(records)
    result = check(frame, "chosen_differs")
    curation = exact_dedupe(frame).dropped.filter(pl.col("reason") == "identical_chosen_rejected").height
    assert not result.passed and result.severity == "error" and result.value == curation == 1
    assert result.examples[0]["row"] == 3
    assert check(clean, "chosen_differs").passed


def test_exact_duplicates_agree_with_curation_and_stats(dpo):
    result = check(dpo.frame, "exact_duplicates")
    curation = exact_dedupe(dpo.frame).dropped.filter(pl.col("reason") == "exact_duplicate").height
    assert result.figures["rows"] == curation == compute(dpo.frame, "pairwise")["exact_duplicate_rows"] > 0
    assert not result.passed and result.value == round(curation / dpo.frame.height, 4)
    loose = make_thresholds({"max_exact_duplicate_rate": 0.05})
    assert check(dpo.frame, "exact_duplicates", thresholds=loose).passed


def test_exact_duplicates_of_unpaired_rows():
    records = unpaired_records(50)
    records.append(dict(records[10]))
    flipped = dict(records[11], label=not records[11]["label"])  # same text, other label: not a repeat
    records.append(flipped)
    result = check(to_frame(records, "unpaired"), "exact_duplicates", kind="unpaired")
    assert not result.passed and result.figures["rows"] == 1 and result.examples[0]["row"] == 51


def test_near_duplicates_fail_on_planted_rewordings(clean):
    records = pair_records(200)
    long = pair_records(20, seed=1)
    for i in range(20):  # twenty rows that change one word of an earlier long row (Jaccard about 0.9)
        parts = (long[i][c][0]["content"] for c in ("prompt", "chosen", "rejected"))
        records[i]["chosen"][0]["content"] = " ".join(parts)
        copy = {k: [dict(m) for m in v] for k, v in records[i].items()}
        text = copy["chosen"][0]["content"].split()
        copy["chosen"][0]["content"] = " ".join(text[:-1] + ["zzz"])
        records.append(copy)
    result = check(to_frame(records), "near_duplicates")
    assert not result.passed and result.value == round(20 / 220, 4)
    assert result.examples[0]["row"] == 201
    assert check(clean, "near_duplicates").passed


def test_length_bias_uses_curations_report(clean):
    records = pair_records(300)
    for r in records:  # chosen always the longer answer
        r["chosen"][0]["content"] = r["chosen"][0]["content"] + " " + r["rejected"][0]["content"]
    frame = to_frame(records)
    result = check(frame, "length_bias")
    assert not result.passed and result.value == 1.0
    assert result.figures == length_bias_report(frame, unit="chars")
    balanced = check(clean, "length_bias")
    assert balanced.passed and balanced.figures["correlation"] == length_bias_report(clean)["correlation"]


def test_length_bias_on_hh_rlhf_is_within_the_default_band(hh):
    result = check(hh.frame, "length_bias")
    assert result.value == compute(hh.frame, "pairwise")["chosen_longer_frac"]
    # measured: 44% of chosen answers are longer, correlation -0.18: inside the default band, so it passes
    assert 0.35 <= result.value <= 0.65 and abs(result.figures["correlation"]) <= 0.3
    assert result.value == pytest.approx(0.4433, abs=1e-4) and result.passed


def test_margin_share_below_the_minimum():
    frame = to_frame(pair_records(100, scores=True))  # margins 1, 2 or 3
    low = int((frame["margin"] < 2).sum())
    assert low > 10
    strict = check(frame, "margin", thresholds=make_thresholds({"min_margin": 2}))
    assert not strict.passed and strict.value == round(low / 100, 4) and strict.figures["below_minimum"] == low
    assert all(e["margin"] < 2 for e in strict.examples)
    assert check(frame, "margin", thresholds=make_thresholds({"min_margin": 1})).passed
    assert check(to_frame(pair_records(10)), "margin").skipped  # no scores, nothing to judge


def test_margin_minimum_comes_from_the_spec_curation_filter():
    spec = {"curate": [{"step": "dedupe"}, {"step": "filter", "min_margin": 2.5}],
            "validation": {"min_pairs": 10, "max_category_share": 0.9}}
    limits = make_thresholds(spec_thresholds(spec), {"min_pairs": 20})
    assert limits.min_margin == 2.5 and limits.max_category_share == 0.9
    assert limits.min_pairs == 20  # the command line wins over the spec


def test_size_warns_under_the_minimum(dpo, clean):
    result = check(dpo.frame, "size")
    assert not result.passed and result.severity == "warning" and result.value == 300
    assert check(dpo.frame, "size", thresholds=Thresholds(min_pairs=300)).passed
    assert check(clean, "size").passed


def test_split_leakage_against_a_test_split(dpo):
    test = dpo.frame.slice(40, 10)
    result = check(dpo.frame, "split_leakage", test=test)
    shared = dpo.frame.filter(pl.col("prompt_id").is_in(test["prompt_id"].implode()))
    assert not result.passed and result.severity == "error" and result.value == shared.height >= 10
    disjoint = check(dpo.frame.slice(0, 40), "split_leakage", test=dpo.frame.slice(100, 50).filter(
        ~pl.col("prompt_id").is_in(dpo.frame.slice(0, 40)["prompt_id"].implode())))
    assert disjoint.passed and disjoint.value == 0


def test_split_leakage_in_a_split_column(clean):
    from prefdata.curate.split import assign_split

    split = clean.with_columns(assign_split(clean))
    assert check(split, "split_leakage").passed  # curation's split keeps each prompt on one side
    leaky = split.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(pl.lit("test"))
                               .otherwise("split").alias("split"))
    leaky = pl.concat([leaky, leaky.head(1).with_columns(pl.lit("train").alias("split"))])
    result = check(leaky, "split_leakage")
    assert not result.passed and result.figures["prompts"] == 1


def test_encoding_finds_real_mojibake_and_control_characters(dpo):
    frame = read_dataset(KTO_DEMO).frame
    for data, kind in ((dpo.frame, "pairwise"), (frame, "unpaired")):
        result = check(data, "encoding", kind=kind)
        inputs = Inputs(data, kind)
        texts = data.select(rows.row_text(inputs))[:, 0]
        control = texts.str.contains(rows.CONTROL)
        expected = control | pl.Series([is_bad(t) for t in texts]) | texts.str.contains("\ufffd", literal=True)
        assert not result.passed and result.value == round(float(expected.mean()), 4) > 0
        assert result.figures["control character"] == int(control.sum())


def test_mojibake_pattern_is_ftfys_detector():
    samples = ["fiancÃ© Cal", "Belle Ã\x89poque", "itâ€™s", "Ã ", "a Ã b", "naïve café", "Straße über ÄÖÜ",
               "日本語のテキスト", "Привет мир", "— “quoted” ‘x’ …", "5 × 3 = 15", "½ cup", "plain"]
    found = pl.Series(samples).str.contains(rows.mojibake_pattern()).to_list()
    assert found == [is_bad(t) for t in samples] and any(found) and not all(found)


def test_encoding_planted_problems(clean):
    records = pair_records(20)
    records[1]["chosen"][0]["content"] = "Le fiancÃ© est arrivÃ© hier."
    records[4]["rejected"][0]["content"] = "broken \ufffd byte"
    records[6]["prompt"][0]["content"] = "tab\tis fine but bell \x07 is not"
    records[8]["chosen"][0]["content"] = "Le fiancé est arrivé, naïve café, Straße, 日本語."
    result = check(to_frame(records), "encoding")
    assert {(e["row"], e["problem"]) for e in result.examples} == {(2, "mojibake"), (5, "U+FFFD"),
                                                                   (7, "control character")}
    assert check(clean, "encoding").passed


def _judgments(n: int, failed: int, inconsistent: int) -> pl.DataFrame:
    rows_ = []
    for i in range(n):
        for order in ("ab", "ba"):
            winner = "b" if (order == "ba" and i < inconsistent) else "a"
            parse_ok = not (order == "ab" and n - failed <= i)
            rows_.append({"prompt_id": f"p{i}", "judge": "j", "a_id": f"a{i}", "b_id": f"b{i}", "order": order,
                          "winner": winner if parse_ok else None, "parse_ok": parse_ok,
                          "raw": '{"winner": "%s"}' % winner if parse_ok else "I cannot decide"})
    return schema.conform(pl.DataFrame(rows_), schema.JUDGMENTS)


def test_judge_parse_failures_and_position_consistency(clean):
    bad = validate_frame(clean, "pairwise", judgments=_judgments(100, failed=20, inconsistent=40),
                         only=("judge_parse_failures", "judge_position_consistency"))
    parse, position = bad.checks
    assert not parse.passed and parse.value == 0.1  # 20 of 200 verdicts unread
    assert parse.examples[0]["raw"] == "I cannot decide" and parse.figures["by_judge"] == {"j": 0.1}
    assert parse.figures["rate"] == {"value": 0.1, "n": 200, "k": 20, "ci95": [0.0657, 0.1494], "few": False}
    assert not position.passed and (position.figures["comparisons"], position.figures["consistent"]) == (80, 40)
    assert position.value == 0.5 and "40 of 80" in position.message and "95% CI 39% to 61%" in position.message
    good = validate_frame(clean, "pairwise", judgments=_judgments(100, failed=2, inconsistent=5),
                          only=("judge_parse_failures", "judge_position_consistency"))
    assert all(c.passed for c in good.checks)
    one_order = _judgments(10, 0, 0).filter(pl.col("order") == "ab")
    only_one = validate_frame(clean, "pairwise", judgments=one_order, only=("judge_position_consistency",))
    assert only_one.checks[0].skipped


def test_kto_label_balance():
    real = read_dataset(KTO_DEMO).frame
    result = check(real, "kto_label_balance", kind="unpaired")
    assert result.passed and result.value == round(float(real["label"].mean()), 4)
    skewed = check(to_frame(unpaired_records(200, desirable=0.9), "unpaired"), "kto_label_balance", kind="unpaired")
    assert not skewed.passed and skewed.figures == {"desirable": 180, "undesirable": 20}


def test_prompt_distinct_ngrams_fail_on_templated_prompts(dpo):
    records = pair_records(200)
    for i, r in enumerate(records):
        r["prompt"][0]["content"] = f"Please write a short story about the number {i} for my class."
    result = check(to_frame(records), "prompt_distinct_ngrams")
    assert not result.passed and result.value < 0.2
    assert check(dpo.frame, "prompt_distinct_ngrams").passed


def test_prompt_near_duplicates_count_distinct_prompts(clean):
    records = pair_records(100)
    for i in range(30):
        records[50 + i]["prompt"] = [{"role": "user", "content": records[i]["prompt"][0]["content"] + " please"}]
    result = check(to_frame(records), "prompt_near_duplicates")
    assert not result.passed and result.value == 0.3
    assert check(clean, "prompt_near_duplicates").passed


def test_prompt_categories_distribution(clean):
    skewed = clean.with_columns(pl.when(pl.int_range(pl.len()) % 10 < 8).then(pl.lit("math"))
                                .otherwise(pl.lit("code")).alias("category"))
    result = check(skewed, "prompt_categories", category="category")
    assert not result.passed and result.value == 0.8
    assert result.figures["distribution"] == {"math": 960, "code": 240}
    even = clean.with_columns((pl.int_range(pl.len()) % 4).cast(pl.String).alias("category"))
    assert check(even, "prompt_categories", category="category").passed


def test_every_catalogue_check_is_named_once():
    assert len(NAMES) == len(set(NAMES)) == 18
