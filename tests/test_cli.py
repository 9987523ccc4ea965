"""The CLIs answer --help without importing heavy libraries (DESIGN.md, rule 5)."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "trl", "datasets", "polars", "pyarrow", "great_expectations", "vllm")

PROBE = """
import sys
from {module} import app
from typer.testing import CliRunner
result = CliRunner().invoke(app, ["--help"])
assert result.exit_code == 0, result.output
print(",".join(m for m in {heavy!r} if m in sys.modules))
print(result.output)
"""


@pytest.mark.parametrize("module, words", [("prefdata.cli", ["convert", "stats", "build", "models"]),
                                           ("prefdata.align.cli", ["hardware"])])
def test_help_imports_nothing_heavy(module, words):
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module, heavy=HEAVY)],
                          capture_output=True, text=True, check=True)
    loaded, _, output = done.stdout.partition("\n")
    assert loaded == ""
    assert all(w in output for w in words)


def test_align_hardware_reports_json():
    import json

    done = subprocess.run([sys.executable, "-c", "from prefdata.align.cli import main; main()", "hardware", "--json"],
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    assert set(found) >= {"torch", "cuda", "gpus", "cpu_cores"} and found["cpu_cores"] >= 1
