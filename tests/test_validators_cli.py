"""`prefdata validate`: exit codes on the shared data, JSON for machines, bad input, a fast --help."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import DPO_DEMO, HH, KTO_DEMO, run_cli
from validators_planted import pair_records, write_jsonl


def implied_exit(found: dict) -> int:
    return 1 if any(c["severity"] == "error" and not c["passed"] for c in found["checks"]) else 0


@pytest.mark.parametrize("path, expected, failing", [
    (HH, 1, {"schema", "empty_text"}),  # prompt_mismatch and empty answers, set aside by the reader
    (DPO_DEMO, 0, set()),
    (KTO_DEMO, 0, set()),
])
def test_exit_code_on_each_shared_file_is_what_its_checks_imply(path, expected, failing):
    done = run_cli("validate", path, "--json", "--no-stamp")
    found = json.loads(done.stdout)
    assert done.returncode == implied_exit(found) == expected
    assert found["passed"] is (expected == 0)
    assert {c["name"] for c in found["checks"] if c["severity"] == "error" and not c["passed"]} == failing
    for check in found["checks"]:
        assert {"name", "severity", "passed", "value"} <= set(check) and check["severity"] in ("error", "warning")


def test_table_for_people(tmp_path):
    done = run_cli("validate", KTO_DEMO, "--no-stamp")
    assert done.returncode == 0
    assert "kto_label_balance" in done.stdout and "validation passed" in done.stdout
    assert "mojibake" in done.stdout  # the encoding examples are shown


def test_thresholds_from_the_command_line_change_the_verdict(tmp_path):
    records = pair_records(40)
    records[0]["rejected"] = records[0]["chosen"]
    data = write_jsonl(records, tmp_path / "pairs.jsonl")
    done = run_cli("validate", data, "--json", "--no-stamp", "--set", "min_pairs=10")
    found = json.loads(done.stdout)
    assert done.returncode == 1 and found["settings"]["thresholds"]["min_pairs"] == 10
    assert next(c for c in found["checks"] if c["name"] == "chosen_differs")["value"] == 1


def test_thresholds_from_a_spec_file(tmp_path):
    records = pair_records(40, scores=True)  # margins 1, 2 or 3
    data = write_jsonl(records, tmp_path / "pairs.jsonl")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: demo\nsources: [{path: pairs.jsonl}]\ncurate: [dedupe, {step: filter, min_margin: 3}]\n"
                    "validation:\n  min_pairs: 40\n  max_low_margin_share: 0.5\n")
    found = json.loads(run_cli("validate", data, "--json", "--no-stamp", "--spec", spec).stdout)
    checks = {c["name"]: c for c in found["checks"]}
    assert found["settings"]["thresholds"]["min_margin"] == 3 and checks["size"]["passed"]
    below = sum(r["chosen_score"] - r["rejected_score"] < 3 for r in records) / 40
    assert checks["margin"]["value"] == round(below, 4) and checks["margin"]["passed"] == (below <= 0.5)
    spec.write_text(spec.read_text() + "  min_pairz: 3\n")
    done = run_cli("validate", data, "--no-stamp", "--spec", spec)
    assert done.returncode == 2 and "validation.min_pairz" in done.stderr


def test_category_and_test_split_options(tmp_path):
    records = pair_records(60)
    for i, r in enumerate(records):
        r["category"] = "math" if i % 10 else "code"
    data = write_jsonl(records, tmp_path / "pairs.jsonl")
    test = write_jsonl(records[:5], tmp_path / "test.jsonl")
    done = run_cli("validate", data, "--json", "--no-stamp", "--category", "category", "--test", test)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["prompt_categories"]["value"] == 0.9 and not checks["prompt_categories"]["passed"]
    assert checks["split_leakage"]["value"] == 5 and done.returncode == 1


@pytest.mark.parametrize("args, words", [
    (["nothere.jsonl"], "no such file"),
    ([str(KTO_DEMO), "--set", "min_pairs"], "NAME=VALUE"),
    ([str(KTO_DEMO), "--set", "max_bias=1"], "max_bias"),
    ([str(KTO_DEMO), "--set", "min_pairs=-3"], "min_pairs"),
    ([str(KTO_DEMO), "--format", "nope"], "unknown format"),
    ([str(KTO_DEMO), "--category", "topic"], "topic"),
])
def test_bad_input_is_one_line_and_exit_2(args, words):
    done = run_cli("validate", *args, "--no-stamp")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and words in done.stderr
    assert "Traceback" not in done.stderr


def test_help_lists_validate_without_heavy_imports():
    probe = ("import sys\nfrom prefdata.cli import app\nfrom typer.testing import CliRunner\n"
             "out = CliRunner().invoke(app, ['validate', '--help']).output\n"
             "heavy = [m for m in ('polars', 'great_expectations', 'transformers', 'pandas') if m in sys.modules]\n"
             "print(heavy, '--tokenizer' in out and '--max-length' in out and '--gx' in out)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[] True"
