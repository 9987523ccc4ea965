"""The terminal says what matters: no library progress bars or raw floats unless asked (--verbose)."""

import json
import os
import re
import subprocess
import sys

from conftest import DPO_DEMO, HH, ROOT, run_cli
from prefdata.noise import QUIET_ENV


def test_convert_to_a_folder_prints_one_line_and_no_datasets_bars(tmp_path):
    done = run_cli("convert", DPO_DEMO, tmp_path / "demo", check=True)
    assert done.stderr.splitlines() == [f"300 rows in (sharegpt, pairwise): 300 written to {tmp_path / 'demo'}"]
    assert done.stdout == ""
    # --verbose lets the library speak (in an environment that does not switch the bars off itself: a CLI
    # run in-process by another test leaves the quiet switches in this process's environment)
    env = {k: v for k, v in os.environ.items() if k not in QUIET_ENV}
    loud = subprocess.run([sys.executable, "-m", "prefdata", "--verbose", "convert", str(DPO_DEMO),
                           str(tmp_path / "loud")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert loud.returncode == 0 and "Saving the dataset" in loud.stderr


def test_length_bias_prints_rounded_figures_only(tmp_path):
    table = run_cli("length-bias", HH, "--on-error", "skip", check=True).stdout
    assert "-0.1736" in table and "-0.1735607376167526" not in table
    assert not re.search(r"\d\.\d{5,}", table), table  # no raw float next to the rounded ones
    bias = json.loads(run_cli("length-bias", HH, "--on-error", "skip", "--json", check=True).stdout)["length_bias"]
    assert bias["logit_coef"] == -0.1736 and bias["logit_ci"] == [-0.2144, -0.1327]
