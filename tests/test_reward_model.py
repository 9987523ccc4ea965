"""Reward models end to end: `align train --method reward` on real HH-RLHF pairs from the embedded SmolLM2 folder,
then the trained folder as a `reward_model` judge in builds (alone and beside an LLM judge), its rewards cached,
and the scores the model's own (batched or alone, truncation counted)."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from conftest import HH, ROOT, run_cli
from prefdata.align.cli import app

QUICKSTART = ROOT / "examples" / "quickstart"


@pytest.fixture(scope="session")
def hh_pairs(tmp_path_factory):
    """The 48 shortest HH-RLHF pairs (README's convert, then validate: stamped)."""
    from prefdata.io import read_dataset, write_table

    work = tmp_path_factory.mktemp("hh")
    run_cli("convert", HH, work / "hh.parquet", "--on-error", "skip", check=True)
    frame = read_dataset(work / "hh.parquet").frame
    chars = lambda c: pl.col(c).list.eval(pl.element().struct.field("content").str.len_chars()).list.sum()  # noqa: E731
    frame = frame.with_columns(_n=chars("prompt") + pl.max_horizontal(chars("chosen"), chars("rejected")))
    write_table(frame.sort("_n").head(48).drop("_n"), work / "pairs.parquet")
    run_cli("validate", work / "pairs.parquet", "--set", "min_pairs=10", check=True)
    return work / "pairs.parquet"


@pytest.fixture(scope="session")
def reward_run(hh_pairs, embedded_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("rm") / "rm"
    result = CliRunner().invoke(app, ["train", "--method", "reward", "--profile", "cpu", "--model", str(embedded_model),
                                      "--data", str(hh_pairs), "--output", str(out), "--max-steps", "4",
                                      "--max-length", "256", "--batch-size", "4", "--eval-fraction", "0.25",
                                      "--eval-steps", "4"])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return out, result.output


@pytest.mark.slow
def test_reward_training_writes_a_sequence_classifier_with_its_card(reward_run, hh_pairs):
    from transformers import AutoModelForSequenceClassification

    out, printed = reward_run
    model = AutoModelForSequenceClassification.from_pretrained(str(out / "model"))
    assert model.config.num_labels == 1 and model.config.pad_token_id is not None
    assert model.config.architectures == ["LlamaForSequenceClassification"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "reward" and summary["steps"] == 4 and summary["saved"] == "merged"
    assert summary["stamp_state"] == "valid"
    held = summary["held_out"]
    assert held["pairs"] == summary["held_out_rows"] > 0 and 0 <= held["correct"] <= held["pairs"]
    assert held["accuracy"] == held["correct"] / held["pairs"] and math.isfinite(held["margin"])
    assert summary["history"][0]["step"] == 0 and "eval_accuracy" in summary["history"][0]  # TRL's own eval
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4]
    card = (out / "README.md").read_text()
    assert summary["fingerprint"] in card and "Validation stamp: **passed**" in card
    assert f"({held['correct']} of {held['pairs']} pairs)" in card and "kind: reward_model" in card
    assert f"held-out accuracy {held['accuracy']:.3f}" in printed
    rows = pl.read_parquet(hh_pairs).height  # nothing lost: trained, held out, or left out with a reason
    assert summary["train_rows"] + summary["held_out_rows"] + sum(summary["dropped"].values()) == rows


def test_reward_training_refuses_unstamped_data(hh_pairs, embedded_model, tmp_path):
    unstamped = tmp_path / "pairs.parquet"
    unstamped.write_bytes(hh_pairs.read_bytes())
    result = CliRunner().invoke(app, ["train", "--method", "reward", "--profile", "cpu", "--model",
                                      str(embedded_model), "--data", str(unstamped), "--output", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "align trains only on validated data" in result.output and not (tmp_path / "o" / "model").exists()


@pytest.mark.slow
def test_rewards_are_the_models_own_batched_or_alone_and_truncation_is_counted(reward_run, hh_pairs):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from prefdata.backends.reward_transformers import TransformersRewardBackend
    from prefdata.judge.reward import requests_for

    out, _ = reward_run
    frame = pl.read_parquet(hh_pairs).head(5).select(
        "prompt", pl.col("chosen").list.last().struct.field("content").alias("response"))
    requests = requests_for(frame, 4096)
    backend = TransformersRewardBackend(str(out), batch_size=8, device="cpu")  # the run folder stands for model/
    assert backend.model.startswith("model@") and len(backend.model) == len("model@") + 16
    batched = [float(a.text) for a in backend.generate(requests)]
    alone = [float(backend.generate([r])[0].text) for r in requests]
    assert batched == pytest.approx(alone, abs=1e-4)
    tok = AutoTokenizer.from_pretrained(str(out / "model"))
    model = AutoModelForSequenceClassification.from_pretrained(str(out / "model")).eval()
    with torch.no_grad():
        direct = [model(**tok.apply_chat_template(r.as_messages(), tokenize=True, return_dict=True,
                                                  return_tensors="pt")).logits[0, 0].item() for r in requests]
    assert batched == pytest.approx(direct, abs=1e-4)
    answers = backend.generate(requests)
    assert {a.finish_reason for a in answers} == {"stop"} and all(a.tokens_in > 20 for a in answers)
    cut = backend.generate(requests_for(frame, 16))
    assert [a.finish_reason for a in cut] == ["length"] * 5 and {a.tokens_in for a in cut} == {16}
    assert [a.text for a in cut] != [a.text for a in answers]  # the last 16 tokens score differently


def _spec(work, judges, name):
    prompts = [json.loads(line) for line in (QUICKSTART / "prompts.jsonl").read_text().splitlines()][:3]
    (work / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    gold = (QUICKSTART / "gold.jsonl").read_text().splitlines()[:3]
    (work / "gold.jsonl").write_text("\n".join(gold) + "\n")
    spec = {"name": name, "sources": [{"path": "prompts.jsonl"}], "cache": "cache.sqlite",
            "generate": {"backend": {"kind": "embedded", "batch_size": 8}, "n": 2, "max_tokens": 32},
            "judges": judges, "gold": {"path": "gold.jsonl"}, "panel": {"method": "mean_score"},
            "curate": [], "validation": {"required_rows": 1}}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.slow
def test_reward_model_judges_a_build_alone_and_in_a_panel_then_from_the_cache(reward_run, tmp_path):
    from prefdata.build import build

    out, _ = reward_run
    rm = {"name": "rm", "kind": "reward_model", "backend": {"kind": "transformers", "model": str(out),
                                                             "device": "cpu"}}
    llm = {"name": "smol", "kind": "pairwise", "backend": {"kind": "embedded"}, "max_tokens": 40, "retries": 0}
    alone = build(_spec(tmp_path, [rm], "alone"), tmp_path / "alone", quiet=True)
    panel = build(_spec(tmp_path, [rm, llm], "panel"), tmp_path / "panel", quiet=True)
    for result in (alone, panel):
        folder = result.output
        scores = pl.read_parquet(folder / "scores.parquet").filter(pl.col("judge") == "rm")
        assert scores.height == 6 + 6  # 3 prompts x 2 candidates, 3 gold pairs x 2 answers, each scored once
        assert scores["parse_ok"].all() and scores["error"].null_count() == scores.height
        assert scores["truncated"].sum() == 0 and scores["score"].is_finite().all()
        judgments = pl.read_parquet(folder / "judgments.parquet").filter(pl.col("judge") == "rm")
        assert judgments.height > 0 and judgments["order"].null_count() == judgments.height
        assert judgments["parse_ok"].all() and judgments["score_a"].is_between(1, 10).all()
        rewards = dict(zip(scores["candidate_id"], scores["score"]))  # the winner is the higher raw reward
        for a, b, winner in judgments.select("a_id", "b_id", "winner").iter_rows():
            assert winner == ("a" if rewards[a] > rewards[b] else "b" if rewards[b] > rewards[a] else "tie")
        figures = result.manifest["judging"]["judges"]["rm"]
        assert figures["gold_accuracy"]["n"] == 3 and figures["position_consistency"]["n"] == 0
        assert figures["parse_failure_rate"]["k"] == 0 and figures["truncated"]["k"] == 0
        assert result.pairs > 0 and pl.read_parquet(folder / "data.parquet").height == result.pairs
        card = (folder / "README.md").read_text()
        assert "| rm |" in card and "not applicable (no order shown" in card
    assert "smol" in panel.manifest["judging"]["agreement"]["rm"]  # agreement with the LLM judge is reported
    assert panel.manifest["cache"]["misses"] > 0  # the LLM judge's verdicts were new; the rewards were not
    again = build(_spec(tmp_path, [rm, llm], "panel"), tmp_path / "panel", quiet=True, fresh=True)
    assert again.manifest["cache"]["misses"] == 0 and again.manifest["cache"]["hits"] > 0
    assert again.manifest["fingerprint"] == panel.manifest["fingerprint"]
    from prefdata.dryrun import estimate
    from prefdata.spec import load_spec

    lines = {line["name"]: line for line in estimate(load_spec(tmp_path / "panel.yaml"))["lines"]}
    # the dry run finds every reward in the cache (two identical answers to one prompt are one request)
    assert lines["rm"]["requests"] == 12 and lines["rm"]["to_send"] == 0 and lines["rm"]["cached"] > 0


def test_reward_model_spec_errors_are_one_line_naming_the_field(tmp_path):
    (tmp_path / "p.jsonl").write_text('{"prompt": "hi"}\n')
    cases = {"backend.kind": {"kind": "reward_model"},
             "swap": {"kind": "reward_model", "backend": {"kind": "transformers", "model": "m"}, "swap": False},
             "rubric": {"kind": "reward_model", "backend": {"kind": "transformers", "model": "m"},
                        "rubric": {"scale": 5}},
             "max_length": {"kind": "pairwise", "max_length": 512}}
    for field, judge in cases.items():
        spec = tmp_path / "spec.yaml"
        spec.write_text(yaml.safe_dump({"name": "x", "sources": [{"path": "p.jsonl"}], "judges": [judge]}))
        done = run_cli("build", spec, "--dry-run")
        assert done.returncode == 2, done.stderr
        line = done.stderr.strip()
        assert "\n" not in line and "judges.0" in line and field in line, line


def test_rewards_are_read_as_hostile_text_and_normalised_for_the_panel():
    from prefdata.judge.panel import decide, resolve
    from prefdata.judge.reward import as_judgments, read_reward

    assert [read_reward(t) for t in ("1.5", "-0.25", "1e3")] == [1.5, -0.25, 1000.0]
    assert [read_reward(t) for t in ("nan", "inf", "-Infinity", "1e400", "1" * 100, "", "one", None)] == [None] * 8
    scores = pl.DataFrame({"prompt_id": ["p"] * 3, "judge": ["rm"] * 3, "candidate_id": ["a", "b", "c"],
                           "score": [-20.0, 0.0, None], "raw": ["-20.0", "0.0", None],
                           "error": [None, None, "backend_error: x"], "attempts": [1, 1, 1]})
    pairs = pl.DataFrame({"prompt_id": ["p"] * 3, "a_id": ["a", "a", "b"], "b_id": ["b", "c", "c"]})
    judged = as_judgments(pairs, scores).with_columns(gold=pl.lit(False))
    first = judged.row(0, named=True)  # a (-20) vs b (0): b wins; standardised, the scale is 1-10
    assert first["winner"] == "b" and first["order"] is None and 1 < first["score_a"] < 5.5 < first["score_b"] < 10
    assert "A: -20.0" in first["raw"] and "B: 0.0" in first["raw"]  # the raw rewards stay in the judgments
    assert first["confidence"] == pytest.approx(1 / (1 + math.exp(-20)))  # Bradley-Terry: sigmoid(reward gap)
    missing = judged.filter(pl.col("b_id") == "c")  # no reward: no verdict, no score, the error kept
    assert missing["winner"].null_count() == 2 and missing["score_b"].null_count() == 2
    assert not missing["parse_ok"].any() and set(missing["error"]) == {"backend_error: x"}
    decided, _ = decide(resolve(judged), "mean_score", {"rm": 10})
    assert decided.filter(pl.col("b_id") == "b")["decision"].to_list() == ["b"]
