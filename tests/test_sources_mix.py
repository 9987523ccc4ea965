"""Mixing sources: `weight` (a share) and `limit` (a count) per spec source, a seeded sample, every row not taken
on record as `not_sampled`, and the manifest and card saying what each source gave."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import polars as pl
import pytest
import yaml

from prefdata.build import build
from prefdata.errors import PrefdataError
from prefdata.sources import spec_pairs
from prefdata.spec import load_spec

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HH = SHARED / "hh-rlhf" / "harmless-base_test.jsonl.gz"
DPO = SHARED / "llamafactory" / "dpo_en_demo.json"


def _spec(tmp_path: Path, sources: list[dict], name: str = "spec.yaml") -> Path:
    spec = {"name": "mix", "sources": sources, "generate": None, "curate": [], "output": {"dir": str(tmp_path / "out")}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(spec))
    return path


def _read(tmp_path: Path, **source) -> object:
    return spec_pairs(load_spec(_spec(tmp_path, [{"path": str(source.pop("path", HH)), "on_error": "skip",
                                                  **source}])))


def test_a_weight_takes_that_share_at_random_and_records_the_rest(tmp_path):
    every = _read(tmp_path)
    result = _read(tmp_path, weight=0.25, seed=7)
    assert result.kept.height == round(0.25 * every.kept.height)
    sampled = result.dropped.filter(pl.col("reason") == "not_sampled")
    assert result.kept.height + sampled.height == every.kept.height  # nothing lost: every row is kept or recorded
    assert sampled["detail"][0].endswith(f"weight 0.25 of {every.kept.height:,} rows")
    kept_rows = set(result.kept["pair_id"])
    assert kept_rows != set(every.kept["pair_id"][: result.kept.height])  # a sample, not the head
    assert result.kept["pair_id"].to_list() == [p for p in every.kept["pair_id"] if p in kept_rows]  # file order
    assert set(_read(tmp_path, weight=0.25, seed=7).kept["pair_id"]) == kept_rows  # the same rows every run
    assert set(_read(tmp_path, weight=0.25, seed=8).kept["pair_id"]) != kept_rows  # another seed, another sample


def test_the_sample_does_not_depend_on_the_files_order(tmp_path):
    lines = gzip.decompress(HH.read_bytes()).decode().splitlines()
    random.Random(0).shuffle(lines)
    shuffled = tmp_path / "shuffled.jsonl"
    shuffled.write_text("\n".join(lines) + "\n")
    ours = set(_read(tmp_path, weight=0.1, seed=1).kept["pair_id"])
    theirs = set(_read(tmp_path, path=shuffled, weight=0.1, seed=1).kept["pair_id"])
    assert len(ours) > 200 and ours == theirs


def test_a_limit_takes_the_first_rows_unless_told_and_the_smaller_rule_wins(tmp_path):
    every = _read(tmp_path, path=DPO)
    first = _read(tmp_path, path=DPO, limit=40)
    assert first.kept["pair_id"].to_list() == every.kept["pair_id"].to_list()[:40]
    assert first.dropped["detail"][0].endswith(": limit 40")
    sample = _read(tmp_path, path=DPO, limit=40, sample="random")
    assert sample.kept.height == 40 and sample.kept["pair_id"].to_list() != first.kept["pair_id"].to_list()
    assert _read(tmp_path, path=DPO, limit=40, weight=0.1).kept.height == 30  # 10% of 300 is fewer than 40
    assert _read(tmp_path, path=DPO, limit=400).dropped.height == 0


@pytest.mark.parametrize("bad, says", [("weight: 0", "greater than 0"), ("weight: 1.5", "less than or equal to 1"),
                                       ("weight: .nan", "finite"), ("sample: shuffle", "'first' or 'random'")])
def test_bad_mixing_keys_are_one_line_errors(tmp_path, bad, says):
    path = tmp_path / "spec.yaml"
    path.write_text(f"name: mix\ngenerate: null\nsources:\n  - path: {DPO}\n    {bad}\n")
    with pytest.raises(PrefdataError) as caught:
        load_spec(path)
    assert f"{path}:5: sources.0." in str(caught.value) and says in str(caught.value)


def test_the_manifest_and_card_say_what_each_source_gave(tmp_path):
    spec = _spec(tmp_path, [{"path": str(HH), "on_error": "skip", "weight": 0.1, "seed": 3},
                            {"path": str(DPO), "limit": 50}])
    result = build(spec, quiet=True)
    mix = result.manifest["sources"]
    assert [(s["rows"], s["taken"]) for s in mix["read"]] == [(2303, 230), (300, 50)]
    assert mix["in_data"] == {"dpo_en_demo.json": 50, "harmless-base_test.jsonl.gz": 230}
    counts = result.manifest["counts"]["sources"]
    assert counts["in"] == counts["kept"] + sum(counts["dropped"].values()) and counts["dropped"]["not_sampled"] == 2323
    card = (tmp_path / "out" / "README.md").read_text()
    assert "## Sources" in card and "| 2,303 | 230 | weight 0.1 |" in card and "| 300 | 50 | limit 50 |" in card
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["sources"] == mix
