"""`prefdata dedupe | filter | length-bias | split` and the `curate:` spec field, run for real."""

import json

import polars as pl
import pytest

from conftest import DPO_DEMO, HH, KTO_DEMO, hh_rows, run_cli
from prefdata.curate.config import DedupeConfig, FilterConfig, NearDedupeConfig
from prefdata.errors import PrefdataError
from prefdata.spec import load_spec


def summary(done) -> dict:
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["rows_in"] == figures["rows_out"] + sum(figures["dropped"].values())
    return figures


def test_dedupe_command_writes_kept_and_dropped(tmp_path):
    out = tmp_path / "deduped.parquet"
    figures = summary(run_cli("dedupe", DPO_DEMO, out, "--near", "--json"))
    assert figures["rows_in"] == 300 and figures["dropped"]["exact_duplicate"] > 0
    kept = pl.read_parquet(out)
    assert kept.height == figures["rows_out"] and kept["pair_id"].n_unique() == kept.height
    dropped = pl.read_ndjson(figures["dropped_file"])
    assert dropped.height == sum(figures["dropped"].values()) and set(dropped["stage"]) <= {"dedupe", "near_dedupe"}


def test_filter_command_min_margin_drops_unscored_pairs_with_a_reason(tmp_path):
    figures = summary(run_cli("filter", DPO_DEMO, tmp_path / "f.jsonl", "--min-margin", "2", "--json"))
    assert figures["rows_out"] == 0 and figures["dropped"] == {"no_margin": 300}  # the demo has no scores


def test_filter_command_lengths_and_decontamination(tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    first = json.loads(DPO_DEMO.read_text())[0]["conversations"][0]["value"]
    eval_file.write_text(json.dumps({"question": first}) + "\n")
    figures = summary(run_cli("filter", DPO_DEMO, tmp_path / "f.parquet", "--min-length", "50",
                              "--max-length-ratio", "4", "--decontaminate", eval_file, "--json"))
    assert figures["dropped"].get("contaminated", 0) >= 1
    assert {"too_short", "length_ratio"} & set(figures["dropped"])


def test_length_bias_command_reports_and_balances(tmp_path):
    done = run_cli("length-bias", HH, "--on-error", "skip", "--json")
    figures = summary(done)
    bias = figures["length_bias"]
    assert {"pairs", "chosen_longer_frac", "correlation", "logit_coef", "logit_ci"} <= set(bias)
    assert bias["pairs"] == figures["rows_out"] and len(bias["logit_ci"]) == 2
    out = tmp_path / "balanced.parquet"
    figures = summary(run_cli("length-bias", HH, "--on-error", "skip", "--balance", out, "--tolerance", "0.02",
                              "--json"))
    assert 0.48 <= figures["balanced"]["chosen_longer_frac"] <= 0.52
    assert pl.read_parquet(out).height == figures["rows_out"] and figures["dropped"]["length_balance"] > 0
    table = run_cli("length-bias", DPO_DEMO)
    assert table.returncode == 0 and "chosen_longer_frac" in table.stdout


def test_split_command_writes_disjoint_prompt_groups(tmp_path):
    figures = summary(run_cli("split", HH, tmp_path / "splits", "--on-error", "skip", "--test-size", "0.2",
                              "--json"))
    train, test = (pl.read_parquet(tmp_path / "splits" / f"{name}.parquet") for name in ("train", "test"))
    assert train.height + test.height == figures["rows_out"]
    assert not set(train["prompt_id"]) & set(test["prompt_id"])
    assert figures["splits"]["test"]["rows"] == test.height


def test_split_command_writes_the_rows_the_reader_set_aside(tmp_path):
    source = tmp_path / "pairs.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in hh_rows()[:60]) + '{"chosen": "broken\n')
    figures = summary(run_cli("split", source, tmp_path / "splits", "--on-error", "skip", "--json"))
    assert figures["dropped"].get("malformed_record") == 1
    dropped = pl.read_ndjson(figures["dropped_file"])
    assert figures["dropped_file"] == str(tmp_path / "splits.dropped.jsonl")
    assert dropped.height == sum(figures["dropped"].values()) and set(dropped["reason"]) == set(figures["dropped"])
    chosen = tmp_path / "aside.jsonl"
    figures = summary(run_cli("split", source, tmp_path / "s2", "--on-error", "skip", "--dropped", chosen, "--json"))
    assert figures["dropped_file"] == str(chosen) and pl.read_ndjson(chosen).height == dropped.height


@pytest.mark.parametrize("args, message", [
    (("filter", DPO_DEMO, "x.jsonl", "--min-length", "-5"), "--min-length: Input should be greater than or equal to 0"),
    (("filter", DPO_DEMO, "x.jsonl", "--min-agreement", "2"), "--min-agreement: Input should be less than or equal"),
    (("filter", DPO_DEMO, "x.jsonl", "--max-length-ratio", "0.5"), "--max-length-ratio: Input should be greater"),
    (("filter", DPO_DEMO, "x.jsonl", "--decontaminate", "e.jsonl", "--eval-ngram", "0"), "--eval-ngram: Input"),
    (("split", DPO_DEMO, "out", "--test-size", "1.5"), "--test-size: Input should be less than 1"),
    (("dedupe", DPO_DEMO, "x.jsonl", "--near", "--threshold", "0"), "--threshold: Input should be greater than 0"),
    (("dedupe", DPO_DEMO, "x.jsonl", "--near", "--num-perm", "4"), "--num-perm: Input should be greater than or"),
    (("dedupe", DPO_DEMO, "x.jsonl", "--near", "--ngram", "0"), "--ngram: Input should be greater than or equal to 1"),
    (("length-bias", DPO_DEMO, "--balance", "x.jsonl", "--target", "2"), "--target: Input should be less than or"),
])
def test_bad_option_values_are_one_line_and_exit_2(tmp_path, args, message):
    done = run_cli(*[tmp_path / a if a in ("x.jsonl", "out") else a for a in args])
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (("dedupe", KTO_DEMO, "x.jsonl"), "curation needs preference pairs"),
    (("dedupe", HH, "x.jsonl"), "harmless-base_test.jsonl.gz:87"),
    (("split", DPO_DEMO, "out", "--stratify", "nope"), "no column 'nope'"),
    (("filter", DPO_DEMO, "x.jsonl", "--decontaminate", "missing-eval.jsonl"), "missing-eval.jsonl"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    done = run_cli(*[tmp_path / a if a in ("x.jsonl", "out") else a for a in args])
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


SPEC = """name: demo
sources:
  - path: prompts.jsonl
curate:
  - dedupe
  - {step: near_dedupe, scope: prompt, threshold: 0.7}
  - step: filter
    min_margin: 2
  - {step: length_balance, tolerance: 0.03}
  - {step: split, test_size: 0.2}
"""


def test_spec_lists_steps_in_any_order(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    spec = load_spec(path)
    assert [s.step for s in spec.curate] == ["dedupe", "near_dedupe", "filter", "length_balance", "split"]
    assert isinstance(spec.curate[1], NearDedupeConfig) and spec.curate[1].threshold == 0.7
    assert isinstance(spec.curate[2], FilterConfig) and spec.curate[2].min_margin == 2
    assert spec.curate[0] == DedupeConfig()
    default = tmp_path / "default.yaml"
    default.write_text("name: d\nsources:\n  - path: p.jsonl\n")
    assert load_spec(default).curate == [DedupeConfig()]


@pytest.mark.parametrize("line, where", [
    ("  - {step: near_dedupe, threshold: 2}", ":5: curate.0.near_dedupe.threshold"),
    ("  - {step: filter, min_margn: 2}", ":5: curate.0.filter.min_margn"),
    ("  - {step: shuffle}", ":5: curate.0"),
    ("  - {step: near_dedupe, bands: 40, rows: 4}", "exceeds num_perm"),
])
def test_bad_curate_step_names_the_line(tmp_path, line, where):
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: demo\nsources:\n  - path: prompts.jsonl\ncurate:\n{line}\n")
    with pytest.raises(PrefdataError) as info:
        load_spec(path)
    assert where in str(info.value)
