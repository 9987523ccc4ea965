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


def _command(name: str, *args: str) -> subprocess.CompletedProcess:
    """The installed entry point, as a user runs it (prefdata.cli:main or prefdata.align.cli:main)."""
    module = {"prefdata": "prefdata.cli", "align": "prefdata.align.cli"}[name]
    return subprocess.run([sys.executable, "-c", f"from {module} import main; main()", *args],
                          capture_output=True, text=True)


USAGE_ERRORS = [
    ("prefdata", "stats", "--nope", "x"), ("prefdata", "nosuchcommand"), ("prefdata", "stats"),
    ("prefdata", "convert", "only-one-argument"), ("prefdata", "dedupe", "--keep", "nope", "a", "b"),
    ("prefdata", "models", "nope"), ("prefdata", "cache", "stats", "extra"), ("prefdata", "build", "--from"),
    ("align", "train", "--nope"), ("align", "nosuch"), ("align", "eval"), ("align", "sweep", "--beta"),
]


@pytest.mark.parametrize("command", USAGE_ERRORS, ids=" ".join)
def test_usage_errors_are_one_line_and_exit_2(command):
    done = _command(*command)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--help" in lines[0], done.stderr


@pytest.mark.parametrize("name", ["prefdata", "align"])
def test_version(name):
    from importlib import metadata

    done = _command(name, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{name} {metadata.version('prefdata')}"


def test_bad_input_is_one_line_with_and_traceback_only_with_debug(tmp_path):
    missing = tmp_path / "missing.jsonl"
    done = _command("prefdata", "stats", str(missing))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "missing.jsonl" in done.stderr
    done = _command("prefdata", "--debug", "stats", str(missing))
    assert done.returncode == 2 and "Traceback" in done.stderr
