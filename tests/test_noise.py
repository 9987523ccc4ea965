"""The terminal says what matters: no library progress bars or raw floats unless asked (--verbose)."""

import json
import re

from conftest import DPO_DEMO, HH, run_cli


def test_convert_to_a_folder_prints_one_line_and_no_datasets_bars(tmp_path):
    done = run_cli("convert", DPO_DEMO, tmp_path / "demo", check=True)
    assert done.stderr.splitlines() == [f"300 rows in (sharegpt, pairwise): 300 written to {tmp_path / 'demo'}"]
    assert done.stdout == ""
    loud = run_cli("--verbose", "convert", DPO_DEMO, tmp_path / "loud", check=True)
    assert "Saving the dataset" in loud.stderr  # --verbose lets the library speak


def test_length_bias_prints_rounded_figures_only(tmp_path):
    table = run_cli("length-bias", HH, "--on-error", "skip", check=True).stdout
    assert "-0.1736" in table and "-0.1735607376167526" not in table
    assert not re.search(r"\d\.\d{5,}", table), table  # no raw float next to the rounded ones
    bias = json.loads(run_cli("length-bias", HH, "--on-error", "skip", "--json", check=True).stdout)["length_bias"]
    assert bias["logit_coef"] == -0.1736 and bias["logit_ci"] == [-0.2144, -0.1327]
