"""The quickstart build, end to end on the embedded model (slow: about two minutes on 2 CPU cores)."""

import json
import os
import re
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from conftest import ROOT, run_cli
from prefdata.backends import grammar
from prefdata.fingerprint import fingerprint
from prefdata.judge.panel import KEYS, resolve

pytestmark = pytest.mark.slow
QUICKSTART = ROOT / "examples" / "quickstart"


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedded_model):
    """Run the quickstart with its own request cache, twice: the second run must come from the cache. In CI
    the cache starts as the main job's (ci/main_job.sh), whose build of the same spec sent these requests."""
    work = tmp_path_factory.mktemp("quickstart")
    for name in ("prompts.jsonl", "gold.jsonl"):
        shutil.copy(QUICKSTART / name, work / name)
    spec = yaml.safe_load((QUICKSTART / "spec.yaml").read_text())
    spec["cache"] = "cache.sqlite"
    main_job = os.environ.get("PREFDATA_QUICKSTART_CACHE")  # CI: the main job built this spec a minute ago
    if main_job and Path(main_job).is_file():
        shutil.copy(main_job, work / "cache.sqlite")  # its answers, so the suite does not generate them twice
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    first = run_cli("build", work / "spec.yaml", "--output", work / "first", check=True)
    second = run_cli("build", work / "spec.yaml", "--output", work / "second", check=True)
    return work, first, second


def test_build_writes_the_four_files(built):
    work, first, _ = built
    out = work / "first"
    for name in ("data.parquet", "dropped.parquet", "manifest.json", "README.md"):
        assert (out / name).is_file(), name
    assert "pairs written to" in first.stderr
    assert first.stdout == "" and "Loading weights" not in first.stderr and "it/s]" not in first.stderr  # no tqdm
    # one-line progress, since stderr is not a terminal: the last line of each stage says it is done
    assert re.search(r"^judge \(smol-pairwise\): (\d+)/\1 \(100%\), .* elapsed, done", first.stderr, re.M)


def test_every_stage_accounts_for_its_rows(built):
    work, _, _ = built
    manifest = json.loads((work / "first" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["sources"]["in"] == 20 and counts["generate"]["in"] == 40
    for stage, c in counts.items():
        assert c["in"] == c["kept"] + sum(c["dropped"].values()), stage
    dropped = pl.read_parquet(work / "first" / "dropped.parquet")
    assert dropped.height == sum(sum(c["dropped"].values()) for c in counts.values())
    assert dropped["reason"].null_count() == 0
    data = pl.read_parquet(work / "first" / "data.parquet")
    assert data.height == manifest["rows"] == counts["dedupe"]["kept"] > 0
    assert manifest["fingerprint"] == fingerprint(data)
    assert manifest["spec"]["name"] == "prefdata-quickstart" and "torch" in manifest["versions"]


def test_panel_of_two_judges_reports_consistency_agreement_and_gold(built):
    work, _, _ = built
    judging = json.loads((work / "first" / "manifest.json").read_text())["judging"]
    pairwise, rubric = judging["judges"]["smol-pairwise"], judging["judges"]["smol-rubric"]
    consistency = pairwise["position_consistency"]
    assert consistency["n"] > 0 and 0 <= consistency["ci95"][0] <= consistency["value"] <= consistency["ci95"][1] <= 1
    assert rubric["position_consistency"]["value"] is None  # pointwise: no order shown
    for figures in (pairwise, rubric):
        assert figures["gold_accuracy"]["n"] == 4 and figures["gold_accuracy"]["few"]
        assert figures["parse_failure_rate"]["n"] == figures["verdicts"]
        if grammar.available():  # decoded under the verdict schema's grammar: no verdict is unreadable
            assert figures["parse_failure_rate"]["value"] == 0, figures["parse_failure_rate"]
        assert 0 < figures["confidence"]["mean"] <= 1  # the embedded model gives token probabilities
    matrix = judging["agreement"]
    assert set(matrix) == {"smol-pairwise", "smol-rubric"}
    # agreement rests on the items both judges decided (without a grammar engine the 135M judge leaves many unreadable)
    resolved = resolve(pl.read_parquet(work / "first" / "judgments.parquet"), "tie").filter(~pl.col("gold"))
    decided = resolved.filter(pl.col("verdict").is_not_null()).group_by(KEYS).len().filter(pl.col("len") == 2)
    assert matrix["smol-pairwise"]["smol-rubric"]["items"] == decided.height
    assert "smol-pairwise" not in matrix["smol-pairwise"]  # no diagonal, for any judge
    data = pl.read_parquet(work / "first" / "data.parquet")
    one_judge = data.filter(pl.col("judges").list.len() < 2)
    assert one_judge["agreement"].null_count() == one_judge.height  # agreement needs two judges
    scores = pl.read_parquet(work / "first" / "scores.parquet")
    assert set(scores["judge"]) == {"smol-rubric"} and scores["raw"].null_count() == 0
    card = (work / "first" / "README.md").read_text()
    assert "position consistency" in card and "Agreement between judges" in card and "gold accuracy" in card
    assert "swapped comparisons; 95% CI" in card and "of 4 gold items; 95% CI" in card
    for name in ("smol-pairwise", "smol-rubric"):  # the judges table's confidence column
        assert re.search(rf"^\| {name} \|.*\| mean [01]\.\d\d; below 0\.6: ", card, re.M), name


def test_judgments_are_parsed_not_executed(built):
    work, _, _ = built
    judgments = pl.read_parquet(work / "first" / "judgments.parquet")
    assert judgments.filter(pl.col("error").is_null())["raw"].null_count() == 0
    assert set(judgments["order"].drop_nulls()) == {"ab", "ba"} and judgments["gold"].sum() > 0
    assert set(judgments.filter("parse_ok")["winner"]) <= {"a", "b", "tie"}
    data = pl.read_parquet(work / "first" / "data.parquet")
    assert data.filter(pl.col("chosen") == pl.col("rejected")).height == 0


def test_rerun_comes_from_the_cache_and_writes_the_same_data(built):
    work, _, _ = built
    first = json.loads((work / "first" / "manifest.json").read_text())
    second = json.loads((work / "second" / "manifest.json").read_text())
    asked = first["cache"]["hits"] + first["cache"]["misses"]
    assert second["cache"]["misses"] == 0 and second["cache"]["hits"] == asked > 0
    assert second["fingerprint"] == first["fingerprint"]


def test_card_describes_the_dataset(built):
    work, _, _ = built
    card = (work / "first" / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["configs"][0]["data_files"][0]["path"] == "data.parquet"
    assert "| pair |" in card and "sha256:" in card


def test_load_dataset_and_dpo_trainer_accept_the_data(built, embedded_model, tmp_path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    work, _, _ = built
    dataset = load_dataset("parquet", data_files=str(work / "first" / "data.parquet"), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(dataset.column_names)
    assert dataset[0]["prompt"][0]["role"] == "user" and dataset[0]["chosen"][0]["role"] == "assistant"
    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForCausalLM.from_pretrained(embedded_model)
    # The fast CPU settings measured in DESIGN.md: fp32, no gradient checkpointing.
    args = DPOConfig(output_dir=str(tmp_path / "dpo"), max_steps=1, per_device_train_batch_size=2,
                     bf16=False, gradient_checkpointing=False, report_to=[], save_strategy="no",
                     max_length=256, logging_steps=1)
    trainer = DPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_the_cards_training_command_runs_offline(built, embedded_model, tmp_path):
    """The card names the model the build used (`prefdata models path`), not a Hub id that fails offline."""
    import subprocess

    work, _, _ = built
    card = (work / "first" / "README.md").read_text()
    command = next(line for line in card.splitlines() if line.startswith("align train "))
    assert "HuggingFaceTB" not in command and "$(prefdata models path)" in command
    command = command.replace("--output ../prefdata-quickstart-dpo", f"--output {tmp_path / 'run'}")
    offline = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(["bash", "-c", f"{command} --max-steps 1 --max-length 128 --eval-fraction 0.2"],
                          cwd=work / "first", env=offline, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "model").is_dir()
    assert "FutureWarning" not in done.stderr and "Loading weights" not in done.stderr  # align's noise is gone


def test_review_page_walks_the_quickstart_and_the_rebuild_applies_it(built, tmp_path):
    """A person walks the quickstart's pairs in Chromium with the keyboard, swaps one and drops one; the build
    `--from review` applies exactly that, reruns nothing else, and the card reports it."""
    from review_server import browser_page, choose, open_review, press, serving

    work, _, _ = built
    out = tmp_path / "reviewed"
    shutil.copytree(work / "first", out)
    before = pl.read_parquet(out / "data.parquet")
    ids = before["pair_id"].to_list()
    assert len(ids) >= 2, "the quickstart should give at least two pairs"
    with serving(out) as (base, _), browser_page() as (page, errors):
        open_review(page, base)
        assert page.locator("table.verdicts tbody tr").count() >= 2  # each judge's verdicts, in both orders
        press(page, "j")
        press(page, "k")
        press(page, "s")  # swap the first pair; the page moves on
        press(page, "d")
        page.keyboard.type("nonsense in both answers")
        press(page, "Enter")  # drop the second
        press(page, "k")
        press(page, "n")
        page.keyboard.type("the chosen answer is in French")
        press(page, "Enter")  # a note on the first
        page.screenshot(path=str(tmp_path / "pair_view.png"))
        choose(page, "#f-show", "dropped")  # what the pair stage set aside, with the judges' raw answers
        assert "dropped row" in page.inner_text("#status")
        assert re.match(r"Dropped at \w+ for \w+", page.inner_text("#pair"))
        assert not errors, errors
    decisions = [json.loads(line) for line in (out / "review.jsonl").read_text().splitlines()]
    assert [(d["pair_id"], d["decision"]) for d in decisions] == [(ids[0], "swap"), (ids[1], "drop"), (ids[0], "note")]

    run_cli("build", work / "spec.yaml", "--output", out, "--from", "review", check=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["ran"] == ["review"]
    assert {k: manifest["review"][k] for k in ("checked", "accepted", "swapped", "dropped", "notes")} == \
        {"checked": 2, "accepted": 0, "swapped": 1, "dropped": 1, "notes": 1}
    assert set(manifest["review"]["judges"]) <= set(manifest["judging"]["judges"])
    after = pl.read_parquet(out / "data.parquet")
    assert after["pair_id"].to_list() == [ids[0], *ids[2:]]
    assert after.row(0, named=True)["chosen"] == before.row(0, named=True)["rejected"]
    dropped = pl.read_parquet(out / "dropped.parquet").filter(pl.col("stage") == "human_review")
    assert dropped["row_id"].to_list() == [ids[1]] and "nonsense in both answers" in dropped["detail"][0]
    assert "## Human review" in (out / "README.md").read_text()


def test_quickstart_sft_set_holds_each_prompts_judged_best_answer(built):
    """`output.sft` on judged data: the best answer is the pair's chosen, bounded by its judges' score."""
    out = built[0] / "first"
    data, sft = pl.read_parquet(out / "data.parquet"), pl.read_parquet(out / "sft.parquet")
    left = pl.read_parquet(out / "sft.dropped.parquet")
    assert sft.height + left.height == data["prompt_id"].n_unique() and sft.height > 0
    assert (sft["score"] >= 5).all() and set(left["reason"]) <= {"below_min_score", "no_score"}
    chosen = data.select("prompt_id", pl.col("chosen").list.last().struct.field("content").alias("answer"),
                         pl.col("chosen_score").alias("score"))
    best = sft.select("prompt_id", pl.col("messages").list.last().struct.field("content").alias("answer"), "score")
    assert best.join(chosen, on=["prompt_id", "answer", "score"]).height == sft.height
