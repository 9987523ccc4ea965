"""Every `--json` output is strict JSON (RFC 8259): parsed here with a parser that refuses NaN and Infinity.

The data are real pairs (the LLaMA-Factory demo) with scores whose difference overflows a float: each score
is finite and valid, the margin is not, which is where a bare `Infinity` used to reach the output.
"""

import json
import math
import subprocess
import sys

import pytest

from conftest import DPO_DEMO, ROOT, json_rows, run_cli


def strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture
def huge_scores(tmp_path):
    rows = []
    for i, r in enumerate(json_rows(DPO_DEMO)[:12]):
        big = 1.5e308 if i % 3 == 0 else float(i)
        rows.append({"prompt": r["conversations"][-1]["value"], "chosen": r["chosen"]["value"],
                     "rejected": r["rejected"]["value"], "score_chosen": big, "score_rejected": -big})
    path = tmp_path / "scored.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_strict_dumps_turns_non_finite_numbers_into_null():
    import numpy as np

    from prefdata import strict_json

    value = {"a": float("nan"), "b": [float("inf"), -math.inf, 1.5], "c": np.float32("nan"), "d": np.int64(3),
             "e": (np.float64(2.5), None, True)}
    assert strict(strict_json.dumps(value)) == {"a": None, "b": [None, None, 1.5], "c": None, "d": 3,
                                                "e": [2.5, None, True]}


@pytest.mark.parametrize("command", [
    ["stats"], ["validate", "--no-stamp", "--set", "min_pairs=1"], ["length-bias"],
    ["dedupe", "{out}/d.jsonl"], ["filter", "{out}/f.jsonl", "--min-margin", "1"], ["split", "{out}/s"],
])
def test_every_data_command_prints_strict_json(huge_scores, tmp_path, command):
    name, *rest = command
    done = run_cli(name, huge_scores, *[a.format(out=tmp_path) for a in rest], "--json")
    assert done.returncode in (0, 1), done.stderr
    found = strict(done.stdout)
    if name == "stats":
        assert found["rows"] == 12 and (found["mean_margin"] is None or math.isfinite(found["mean_margin"]))


def test_filter_min_margin_drops_an_overflowing_margin_as_no_margin(huge_scores, tmp_path):
    found = strict(run_cli("filter", huge_scores, tmp_path / "f.jsonl", "--min-margin", "1", "--json",
                           check=True).stdout)
    # rows 0, 3, 6, 9: an infinite margin, so none; the others: a margin of 2 * row >= 2, kept
    assert found["dropped"] == {"no_margin": 4} and found["rows_out"] == 8
    assert found["rows_out"] + sum(found["dropped"].values()) == found["rows_in"] == 12


def test_build_dry_run_and_cache_stats_print_strict_json(tmp_path):
    done = run_cli("build", ROOT / "examples" / "api" / "spec.yaml", "--dry-run", "--json",
                   env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    assert strict(done.stdout)["requests"] > 0
    done = run_cli("cache", "stats", "--cache", tmp_path / "c.sqlite", "--json", check=True)
    assert strict(done.stdout)["responses"] == 0


def test_align_hardware_prints_strict_json():
    done = subprocess.run([sys.executable, "-c", "from prefdata.align.cli import main; main()", "hardware", "--json"],
                          capture_output=True, text=True, check=True)
    assert strict(done.stdout)["cpu_cores"] >= 1


def test_no_command_prints_json_but_through_the_strict_helper():
    """`align eval --json` needs a trained model (its run is in the slow tests); this holds every command
    that prints JSON to the one helper."""
    offenders = []
    for folder in ("prefdata", "validators", "align"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if "echo(json.dumps" in text or "print(json.dumps" in text:
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
