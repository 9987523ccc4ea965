"""Best-of-n SFT export (`prefdata export --sft`, `output.sft`) and the card's Hub metadata."""

import json

import polars as pl
import pytest
import yaml

from conftest import DPO_DEMO as LF, ROOT, run_cli
from prefdata.best_of_n import best_of_n
from prefdata.io import read_dataset
from prefdata.spec import SftSpec

HH_SPEC = ROOT / "examples" / "hh_curate" / "spec.yaml"


def _msg(role, text):
    return [{"role": role, "content": text}]


def _pairs(rows):
    """(prompt, chosen, rejected, chosen_score, rejected_score) -> a pairs table with ids."""
    return pl.DataFrame([{"pair_id": f"p{i}", "prompt": _msg("user", p), "chosen": _msg("assistant", c),
                           "rejected": _msg("assistant", r), "chosen_score": cs, "rejected_score": rs,
                           "margin": None if cs is None else cs - rs, "prompt_id": p, "source": "t"}
                          for i, (p, c, r, cs, rs) in enumerate(rows)])


TOURNAMENT = [
    ("three", "A", "B", 9.0, 6.0), ("three", "A", "C", 9.0, 2.0), ("three", "B", "C", 6.0, 2.0),  # A beats all
    ("cycle", "X", "Y", 7.0, 6.0), ("cycle", "Y", "Z", 7.0, 6.0), ("cycle", "Z", "X", 7.0, 6.0),  # no best
    ("weak", "meh", "worse", 4.0, 3.0),
    ("close", "good", "almost", 8.0, 7.5),
    ("unscored", "u1", "u2", None, None),
]


def test_best_answer_per_prompt_with_reasons_for_the_rest():
    result = best_of_n(_pairs(TOURNAMENT), SftSpec(min_score=5, min_margin=1))
    kept = {row["prompt_id"]: row for row in result.kept.iter_rows(named=True)}
    assert list(kept) == ["three"]
    best = kept["three"]
    assert best["messages"] == _msg("user", "three") + _msg("assistant", "A")
    assert (best["score"], best["margin"], best["wins"]) == (9.0, 3.0, 2)  # the smallest margin it won by
    reasons = dict(result.dropped.select("prompt_id", "reason").iter_rows())
    assert reasons == {"cycle": "no_clear_best", "weak": "below_min_score", "close": "below_min_margin",
                       "unscored": "no_score"}
    assert result.kept.height + result.dropped.height == _pairs(TOURNAMENT)["prompt_id"].n_unique()
    detail = dict(result.dropped.select("reason", "detail").iter_rows())
    assert detail["below_min_score"] == "score 4.0 < min_score 5.0" and "cycle" in detail["no_clear_best"]
    record = json.loads(result.dropped.filter(pl.col("prompt_id") == "weak")["record"][0])
    assert record["chosen"] == _msg("assistant", "meh") and "_why" not in record  # the pair as it was


def test_without_bounds_every_prompt_with_a_best_is_kept_and_ties_go_to_the_higher_score():
    rows = [("two", "low", "x", 5.0, 1.0), ("two", "high", "y", 8.0, 1.0)]  # two unbeaten answers
    result = best_of_n(_pairs(rows + TOURNAMENT))
    kept = dict(result.kept.select("prompt_id", pl.col("messages").list.last().struct.field("content")).iter_rows())
    assert kept["two"] == "high" and kept["unscored"] == "u1" and "cycle" not in kept
    assert result.dropped["reason"].to_list() == ["no_clear_best"]


def test_answers_are_compared_after_normalisation():
    """The same answer with other spacing or case is one candidate: it lost, so it is not the best."""
    rows = [("q", "Paris.", "Lyon", 9.0, 2.0), ("q", "Lyon", "  paris. ", 9.0, 2.0)]
    assert best_of_n(_pairs(rows)).dropped["reason"].to_list() == ["no_clear_best"]


def test_multi_turn_prompts_keep_every_turn():
    frame = _pairs([("q", "yes", "no", 9.0, 1.0)]).with_columns(
        pl.lit([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"}, {"role": "user", "content": "q"}]).alias("prompt"))
    messages = best_of_n(frame).kept["messages"][0].to_list()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]


def test_export_cli_on_llamafactory_pairs(tmp_path):
    out = tmp_path / "sft.jsonl"
    done = run_cli("export", LF, out, "--sft", "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    pairs = read_dataset(LF).frame
    assert figures["pairs_in"] == pairs.height == 300
    assert figures["exported"] == figures["prompts"] == pairs["prompt_id"].n_unique()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    chosen = {(r["prompt_id"], r["chosen"][-1]["content"]) for r in pairs.iter_rows(named=True)}
    for row in rows:  # each example is its prompt followed by one of that prompt's chosen answers
        assert row["messages"][-1]["role"] == "assistant"
        assert (row["prompt_id"], row["messages"][-1]["content"]) in chosen


def test_export_cli_usage_errors_are_one_line(tmp_path):
    for args, said in [((), "say what to export: --sft"),
                       (("--sft", "--min-score", "5"), "carry no judges' scores"),
                       (("--sft", "--min-score", "11"), "--min-score: Input should be less than or equal to 10"),
                       (("--sft", "--min-margin", "nan"), "--min-margin")]:
        done = run_cli("export", LF, tmp_path / "x.jsonl", *args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_sft_rows_are_what_trl_takes(embedded_model):
    """TRL sees the rows as conversational and renders them with a chat template (the embedded model's)."""
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational

    row = best_of_n(read_dataset(LF).frame.head(3)).kept.select("messages").row(0, named=True)
    assert is_conversational(row)
    text = apply_chat_template(row, AutoTokenizer.from_pretrained(embedded_model))["text"]
    assert row["messages"][-1]["content"][:200] in text and "<|im_start|>assistant" in text


@pytest.fixture(scope="module")
def hh_build(tmp_path_factory):
    out = tmp_path_factory.mktemp("hh") / "out"
    done = run_cli("build", HH_SPEC, "--output", out)
    assert done.returncode == 0, done.stderr
    return out


def test_build_writes_the_sft_set_and_accounts_for_every_prompt(hh_build):
    manifest = json.loads((hh_build / "manifest.json").read_text())
    data, sft = pl.read_parquet(hh_build / "data.parquet"), pl.read_parquet(hh_build / "sft.parquet")
    left = pl.read_parquet(hh_build / "sft.dropped.parquet")
    assert manifest["sft"]["exported"] == sft.height and sft.height + left.height == data["prompt_id"].n_unique()
    assert manifest["sft"]["prompts"] == data["prompt_id"].n_unique()
    assert set(sft["split"]) == {"train", "test"}  # the held-out prompts stay held out
    card = (hh_build / "README.md").read_text()
    assert f"holds the best answer for {sft.height} of" in card


def _front_matter(path):
    return yaml.safe_load(path.read_text().split("---\n")[1])


def test_card_metadata_follows_the_hub_and_agrees_with_push(hh_build, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    from prefdata.publish import stage_upload

    meta = DatasetCard.load(hh_build / "README.md").data.to_dict()
    data = pl.read_parquet(hh_build / "data.parquet")
    assert meta["license"] == "mit" and meta["language"] == ["en"] and meta["multilinguality"] == "monolingual"
    assert meta["size_categories"] == ["1K<n<10K"] and 1_000 <= data.height < 10_000
    assert meta["source_datasets"] == ["extended|Anthropic/hh-rlhf"] and meta["task_categories"] == ["text-generation"]
    assert meta["pretty_name"] == "hh-rlhf-harmless-curated" and "dpo" in meta["tags"]
    staged = stage_upload(hh_build, tmp_path / "staged")
    pushed = _front_matter(staged / "README.md")
    splits = {c["config_name"]: [f["split"] for f in c["data_files"]] for c in meta["configs"]}
    assert splits == {c["config_name"]: [f["split"] for f in c["data_files"]] for c in pushed["configs"]}
    assert splits == {"default": ["train", "test"], "sft": ["train"]}
    # both folders load, with the same rows in each split
    local, hub = datasets.load_dataset(str(hh_build)), datasets.load_dataset(str(staged))
    counts = data.group_by("split").len()
    assert {s: local[s].num_rows for s in local} == {s: hub[s].num_rows for s in hub} == dict(counts.iter_rows())
    assert datasets.load_dataset(str(staged), "sft")["train"].num_rows == pl.read_parquet(
        hh_build / "sft.parquet").height


def test_size_category_bounds():
    from prefdata.report.hub import size_category

    assert [size_category(n) for n in (0, 999, 1000, 99_999, 1_000_000, 2 * 10**9)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "1M<n<10M", "n>1B"]


def test_card_language_defaults_to_the_detected_column_and_bad_metadata_is_refused(tmp_path):
    from pydantic import ValidationError

    from prefdata.report.hub import card_data
    from prefdata.spec import Spec

    spec = Spec(name="x", sources=[{"path": "Anthropic/hh-rlhf"}, {"path": "a.jsonl"}], generate=None)
    data = pl.DataFrame({"language": ["en", "de", None, "en"]})
    meta = card_data(spec, data, {"train": "data.parquet"}).to_dict()
    assert meta["language"] == ["de", "en"] and meta["multilinguality"] == "multilingual"
    assert meta["source_datasets"] == ["extended|Anthropic/hh-rlhf"] and "license" not in meta
    for card in ({"license": "MIT License"}, {"language": ["english"]}, {"license": "mit\nevil: 1"}):
        with pytest.raises(ValidationError):
            Spec(name="x", sources=[{"path": "a.jsonl"}], output={"card": card})


def test_a_data_folder_that_is_not_a_builds_split_files_stops_the_build(tmp_path):
    out = tmp_path / "out"
    (out / "data").mkdir(parents=True)
    (out / "data" / "mine.csv").write_text("a,b\n")
    done = run_cli("build", HH_SPEC, "--output", out)
    assert done.returncode == 2 and "mine.csv, not split files a build wrote" in done.stderr, done.stderr
    assert (out / "data" / "mine.csv").is_file() and not (out / "data.parquet").exists()


def test_nan_and_infinite_scores_count_as_no_score():
    rows = [("q", "nan", "x", float("nan"), 1.0), ("q", "fine", "y", 6.0, 1.0), ("r", "inf", "z", float("inf"), 1.0)]
    result = best_of_n(_pairs(rows), SftSpec(min_score=5))
    kept = dict(result.kept.select("prompt_id", pl.col("messages").list.last().struct.field("content")).iter_rows())
    assert kept == {"q": "fine"}  # NaN does not outrank 6.0
    assert result.dropped.select("prompt_id", "reason").rows() == [("r", "no_score")]


def test_a_score_bound_on_unjudged_sources_stops_the_build_before_it_writes(tmp_path):
    spec = yaml.safe_load(HH_SPEC.read_text())
    spec["sources"][0]["path"] = str(ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz")
    spec["output"]["sft"] = {"min_score": 6}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = run_cli("build", tmp_path / "spec.yaml", "--output", tmp_path / "out")
    assert done.returncode == 2 and "carry no judges' scores" in done.stderr, done.stderr
    assert not (tmp_path / "out" / "data.parquet").exists()
