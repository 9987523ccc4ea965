"""`align compare`: a tiny random-weight Llama trained on two variants of the LLaMA-Factory pairs (as they are,
and with a curation step applied), two seeds each, at equal steps, scored on one held-out set."""

import json
import os
import subprocess
import sys

import polars as pl
import pytest
import yaml
from fake_llm import FakeLLM

from tests.align_fixtures import tiny_model  # noqa: F401  (fixture)
from conftest import DPO_DEMO, ROOT
from prefdata.validators.stamp import check_stamp

pytestmark = pytest.mark.slow


def _align(*args):
    return subprocess.run([sys.executable, "-m", "prefdata.align.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "OPENAI_API_KEY": "test"})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The demo's 52 shortest pairs: 40 to train on, the 12 with other prompts held out."""
    from prefdata.io import read_dataset, write_table

    work = tmp_path_factory.mktemp("compare")
    frame = read_dataset(DPO_DEMO).frame.unique("prompt_id", keep="first", maintain_order=True)
    length = pl.col("chosen").list.last().struct.field("content").str.len_chars()
    frame = frame.sort(length + pl.col("prompt").list.last().struct.field("content").str.len_chars()).head(52)
    write_table(frame.head(40), work / "raw.parquet")
    write_table(frame.tail(12), work / "held.parquet")
    return work


def _common(files, tiny_model, out):  # noqa: F811
    return ("--eval", files / "held.parquet", "--output", out, "--model", tiny_model, "--method", "dpo",
            "--profile", "cpu", "--steps", "2", "--batch-size", "2", "--eval-steps", "1")


def test_two_variants_two_seeds_at_equal_steps_then_nothing_trained_again(files, tiny_model):  # noqa: F811
    out = files / "out"
    args = ("compare", "--variant", f"raw={files / 'raw.parquet'}", "--variant", "short=raw+filter:max_length=200",
            *_common(files, tiny_model, out), "--seeds", "2")
    done = _align(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "compare.json").read_text())
    runs = result["runs"]
    assert [(r["variant"], r["seed"]) for r in runs] == [("raw", 0), ("raw", 1), ("short", 0), ("short", 1)]
    assert all(r["steps"] == 2 and not r["reused"] for r in runs)
    short = result["variants"]["short"]
    assert short["curation"] == [{"step": "filter", "in": 40, "kept": short["pairs"]}] and short["pairs"] < 40
    for name in ("raw", "short"):  # each variant: its pairs as train, the same 12 held-out pairs as test
        data = pl.read_parquet(out / "data" / f"{name}.parquet")
        assert data.filter(pl.col("split") == "test").height == 12
        assert data.filter(pl.col("split") == "train").height == result["variants"][name]["pairs"]
        assert check_stamp(out / "data" / f"{name}.parquet").state == "valid"  # validated on the way
    table = result["table"]
    assert table["raw"]["accuracy"]["n"] == 2 and table["short"]["accuracy_vs_raw"]["n"] == 2
    diffs = [s["figures"]["accuracy"] - r["figures"]["accuracy"] for r, s in zip(runs[:2], runs[2:])]
    assert table["short"]["accuracy_vs_raw"]["mean"] == pytest.approx(sum(diffs) / 2)
    epochs = {r["variant"]: r["epochs"] for r in runs}
    assert epochs["short"] > epochs["raw"]  # the smaller variant is seen for more epochs at equal compute
    readme = (out / "README.md").read_text()
    assert "| raw | 40 |" in readme and "align compare --variant" in readme
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = _align(*args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert all(r["reused"] for r in json.loads((out / "compare.json").read_text())["runs"])


def test_held_out_prompts_in_a_variant_are_refused_unless_allowed(files, tiny_model):  # noqa: F811
    out = files / "overlap"
    args = ("compare", "--variant", f"raw={files / 'raw.parquet'}", "--variant", f"held={files / 'held.parquet'}",
            *_common(files, tiny_model, out), "--seeds", "1")
    done = _align(*args)
    assert done.returncode == 2 and "--variant held: 12 of 12 held-out pairs share their prompt" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    allowed = _align(*args, "--allow-overlap")
    assert allowed.returncode == 0, allowed.stderr[-3000:]
    facts = json.loads((out / "compare.json").read_text())["variants"]
    assert facts["held"]["held_out_overlap"] == 12 and facts["held"]["stamp_passed"] is False
    assert facts["raw"]["stamp_passed"] is True


def test_win_rate_judged_by_the_panel_and_cached(files, tiny_model):  # noqa: F811
    """--win-rate: every run's answers to 3 held-out prompts against the base model's, judged by a local
    OpenAI-compatible server in both orders; a rerun trains nothing and asks nothing."""
    out = files / "win"
    with FakeLLM() as fake:
        judges = files / "judges.yaml"
        judges.write_text(yaml.safe_dump([{"name": "fake", "retries": 0, "backend": {
            "kind": "openai", "model": "fake-judge", "base_url": f"http://u:hunter22@{fake.url[7:]}/v1",
            "max_attempts": 1}}]))
        args = ("compare", "--variant", f"raw={files / 'raw.parquet'}", "--variant", "short=raw+filter:max_length=200",
                *_common(files, tiny_model, out), "--seeds", "2", "--win-rate", "--judges", judges,
                "--win-limit", "3", "--max-new-tokens", "6", "--cache", files / "win.sqlite")
        done = _align(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        result = json.loads((out / "compare.json").read_text())
        verdicts = [r for r in fake.received if "impartial judge" in json.dumps(r)]
        for run in result["runs"]:
            win = run["win"]
            assert win["prompts"] == 3 and win["wins"] + win["losses"] + win["ties"] == 3
            assert run["figures"]["win_rate"] == pytest.approx((win["wins"] + 0.5 * win["ties"]) / 3)
        differing = sum(3 - r["win"]["identical"] for r in result["runs"])
        assert len(verdicts) == 2 * differing  # each differing answer pair judged in both orders, once
        table = result["table"]
        wins = [r["figures"]["win_rate"] for r in result["runs"]]
        assert table["raw"]["win_rate"]["mean"] == pytest.approx(sum(wins[:2]) / 2)
        assert table["short"]["win_rate_vs_raw"]["mean"] == pytest.approx((wins[2] - wins[0] + wins[3] - wins[1]) / 2)
        readme = (out / "README.md").read_text()
        assert "| win rate |" in readme and "win rate vs raw" in readme and "`fake`" in readme
        assert "hunter22" not in (out / "compare.json").read_text()  # the judge's URL credentials
        sent = len(fake.received)
        again = _align(*args)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(fake.received) == sent
        rerun = json.loads((out / "compare.json").read_text())
        assert all(r["reused"] for r in rerun["runs"]) and rerun["table"] == table


def test_win_rate_options_need_win_rate(files):
    done = _align("compare", "--variant", f"raw={files / 'raw.parquet'}", "--variant", "b=raw+dedupe",
                  "--eval", files / "held.parquet", "--output", files / "w", "--model", "m", "--win-limit", "3")
    assert done.returncode == 2 and "go with --win-rate" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("variant, said", [
    ("noequals", "write NAME=PATH"),
    ("x=nothing+dedupe", "neither an earlier variant nor a file"),
    ("x=raw+filter:min_margin=abc", "min_margin"),
    ("x=raw+nosuchstep", "step"),
])
def test_bad_variants_are_one_line(files, variant, said):
    done = _align("compare", "--variant", f"raw={files / 'raw.parquet'}", "--variant", variant,
                  "--eval", files / "held.parquet", "--output", files / "bad", "--model", "m")
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
