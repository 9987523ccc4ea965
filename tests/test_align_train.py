"""Every method trains from the `align train` CLI for a couple of steps on stamped real data (the shared
LLaMA-Factory demo files), on a tiny model built offline (random weights, SmolLM2's tokenizer and chat
template), with the cpu profile and LoRA; plus the run's outputs, `align eval` and `align sweep`."""

from __future__ import annotations

import json

import polars as pl
import pytest
from typer.testing import CliRunner

from prefdata.align.cli import app
from tests.align_fixtures import stamped_kto, stamped_pairs, tiny_model  # noqa: F401  (fixtures)

TINY = ["--profile", "cpu", "--max-steps", "2", "--max-length", "128", "--batch-size", "2"]


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def train_cli(model, data, out, method, *extra):
    result = CliRunner().invoke(app, ["train", "--method", method, "--model", str(model), "--data", str(data),
                                      "--output", str(out), *TINY, *extra])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return json.loads((out / "summary.json").read_text()), result.output


@pytest.mark.parametrize("method", ["dpo", "ipo", "orpo", "simpo", "kto"])
def test_every_method_trains_from_the_cli(method, tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    out = tmp_path / method
    summary, printed = train_cli(tiny_model, stamped_pairs, out, method, "--eval-fraction", "0.2",
                                 "--eval-steps", "2")
    assert summary["steps"] == 2 and summary["method"] == method
    assert summary["stamp_state"] == "valid" and summary["saved"] == "adapter"
    assert (out / "model" / "adapter_model.safetensors").is_file()
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2]
    # finite (NaN is written as null): no prompt that fills max_length left an empty completion behind
    assert all(isinstance(r["loss"], float) and isinstance(r["grad_norm"], float) for r in lines if "loss" in r)
    assert summary["history"] and summary["history"][0]["step"] == 0  # held-out eval before the first step
    assert (out / "plots" / "loss.png").stat().st_size > 1000
    card = (out / "README.md").read_text()
    assert summary["fingerprint"] in card and "Validation stamp: **passed**" in card
    config = json.loads((out / "align_config.json").read_text())
    assert config["method"] == method and config["beta"] is not None  # the resolved config
    if method == "kto":  # paired data unpaired: two completions per training pair
        assert summary["train_examples"] == 2 * summary["train_rows"]
    assert "held_out" in summary and "eval_rewards/accuracies" in summary["held_out"]
    assert f"{method} / cpu: 2 steps" in printed


def test_rows_left_out_are_on_record_with_their_reason(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    """A max_length that some prompts fill: those rows leave training, each with its reason, none lost."""
    out = tmp_path / "short"
    summary, printed = train_cli(tiny_model, stamped_pairs, out, "dpo", "--eval-fraction", "0.2",
                                 "--max-length", "80")
    dropped = pl.read_parquet(out / "dropped.parquet")
    assert dropped.height > 0 and set(dropped["reason"]) == {"prompt_fills_max_length"}
    assert summary["dropped"] == {"prompt_fills_max_length": dropped.height}
    rows = pl.read_parquet(stamped_pairs).height
    assert summary["train_rows"] + summary["held_out_rows"] + dropped.height == rows
    kept = set(pl.read_parquet(stamped_pairs)["pair_id"]) - set(dropped["row_id"])
    assert len(kept) == summary["train_rows"] + summary["held_out_rows"]


def test_kto_on_unpaired_data(tiny_model, stamped_kto, tmp_path):  # noqa: F811
    summary, _ = train_cli(tiny_model, stamped_kto, tmp_path / "kto", "kto")
    assert summary["steps"] == 2 and summary["train_examples"] == summary["train_rows"]
    assert summary["held_out"] == {}  # unpaired held-out data has no pairs to rank


def test_yaml_config_and_merged_model(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"method: dpo\nprofile: cpu\nmodel: {tiny_model}\ndata: {stamped_pairs}\noutput: {tmp_path / 'r'}\n"
                   "max_steps: 1\nmax_length: 96\nbeta: 0.2\nmerge: true\neval_fraction: 0\n")
    result = CliRunner().invoke(app, ["train", str(cfg)])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["saved"] == "merged" and summary["held_out_rows"] == 0
    assert (tmp_path / "r" / "model" / "model.safetensors").is_file()
    assert json.loads((tmp_path / "r" / "align_config.json").read_text())["beta"] == 0.2


def test_skip_validation_is_said_in_the_card(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    plain = tmp_path / "plain.parquet"
    plain.write_bytes(stamped_pairs.read_bytes())
    summary, printed = train_cli(tiny_model, plain, tmp_path / "run", "dpo", "--skip-validation",
                                 "--eval-fraction", "0")
    assert summary["stamp_state"] == "skipped-missing"
    assert "NOT VALID" in (tmp_path / "run" / "README.md").read_text()
    assert "WARNING: trained without a passing validation stamp" in printed


def test_align_eval_on_a_run(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    train_cli(tiny_model, stamped_pairs, out, "dpo", "--eval-fraction", "0.3")
    result = CliRunner().invoke(app, ["eval", str(out), "--data", str(stamped_pairs), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.output[result.output.index("{\n"):])
    summary = json.loads((out / "summary.json").read_text())
    assert got["held_out_rows"] == summary["held_out_rows"]
    # the same held-out split and the same reference: the same figures as the run's closing evaluation
    assert got["reward"]["eval_rewards/accuracies"] == pytest.approx(summary["held_out"]["eval_rewards/accuracies"])
    assert got["reward"]["eval_rewards/margins"] == pytest.approx(summary["held_out"]["eval_rewards/margins"],
                                                                  rel=1e-3, abs=1e-6)


def test_sweep_table(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    cfg = tmp_path / "base.yaml"
    cfg.write_text(f"method: dpo\nprofile: cpu\nmodel: {tiny_model}\ndata: {stamped_pairs}\noutput: {tmp_path / 's'}\n"
                   "max_steps: 1\nmax_length: 128\neval_fraction: 0.2\n")
    result = CliRunner().invoke(app, ["sweep", str(cfg), "--beta", "0.05,0.5", "--lr", "1e-5"])
    assert result.exit_code == 0, result.output
    table = pl.read_csv(tmp_path / "s" / "sweep.csv")
    assert table["beta"].to_list() == [0.05, 0.5] and table["steps"].to_list() == [1, 1]
    assert table["held_out_accuracy"].is_not_null().all()
    assert "| run | beta |" in result.output and "beta0.05_lr1e-05" in result.output
    assert json.loads((tmp_path / "s" / "beta0.5_lr1e-05" / "align_config.json").read_text())["beta"] == 0.5


@pytest.mark.skipif(not has_cuda(), reason="QLoRA needs a CUDA GPU and bitsandbytes; this machine has no GPU")
def test_qlora_trains_on_gpu(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    result = CliRunner().invoke(app, ["train", "--method", "dpo", "--profile", "qlora", "--model", str(tiny_model),
                                      "--data", str(stamped_pairs), "--output", str(tmp_path / "q"),
                                      "--max-steps", "2", "--max-length", "128"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "q" / "summary.json").read_text())["steps"] == 2


@pytest.mark.slow
def test_win_rate_judged_in_both_orders(tiny_model, stamped_pairs, tmp_path):  # noqa: F811
    """The tiny policy's answers against its reference's, judged by the embedded model in both orders;
    answers and verdicts go through the request cache, so a second evaluation asks no model anything."""
    out = tmp_path / "run"
    train_cli(tiny_model, stamped_pairs, out, "dpo", "--eval-fraction", "0.3")

    def evaluate() -> dict:
        result = CliRunner().invoke(app, ["eval", str(out), "--data", str(stamped_pairs), "--win-rate", "--limit", "3",
                                          "--max-new-tokens", "12", "--cache", str(tmp_path / "c.sqlite"), "--json"])
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
        return json.loads(result.output[result.output.index("{\n"):])

    first, second = evaluate(), evaluate()
    # 3 policy + 3 reference answers, then the judge's verdicts (two orders per differing pair)
    assert first["cache"]["hits"] == 0 and first["cache"]["misses"] >= 6
    assert second["cache"] == {"hits": first["cache"]["misses"], "misses": 0}
    got = first["win_rate"]
    assert second["win_rate"] == got
    assert got["prompts"] == 3 and got["wins"] + got["losses"] + got["ties"] == 3
    assert got["win_rate"] == pytest.approx((got["wins"] + 0.5 * got["ties"]) / 3)
    assert len(got["examples"]) == 3 and all(e["policy"] is not None for e in got["examples"])
