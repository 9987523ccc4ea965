"""The shipped examples run: curating HH-RLHF without generating, and the API spec's dry run."""

import json

import polars as pl

from conftest import ROOT, run_cli


def test_hh_curation_example_builds_a_validated_split_dataset(tmp_path):
    done = run_cli("build", ROOT / "examples" / "hh_curate" / "spec.yaml", "--output", tmp_path / "hh")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "hh" / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["sources"]["in"] == 2312 and manifest["validation"]["passed"]
    for stage, c in counts.items():
        assert c["in"] == c["kept"] + sum(c["dropped"].values()), stage
    data = pl.read_parquet(tmp_path / "hh" / "data.parquet")
    assert data.height == manifest["rows"] and set(data["split"]) == {"train", "test"}
    train, test = (set(data.filter(pl.col("split") == s)["prompt_id"]) for s in ("train", "test"))
    assert not train & test  # grouped by prompt: no prompt in both splits
    dropped = pl.read_parquet(tmp_path / "hh" / "dropped.parquet")
    assert dropped.height + data.height == counts["sources"]["in"]  # every row accounted for
    assert (tmp_path / "hh" / "validation.json").is_file() and (tmp_path / "hh" / "length_bias.png").is_file()
    # a second run reuses every curation stage
    again = run_cli("build", ROOT / "examples" / "hh_curate" / "spec.yaml", "--output", tmp_path / "hh")
    assert again.returncode == 0
    stages = json.loads((tmp_path / "hh" / "manifest.json").read_text())["stages"]
    assert stages["ran"] == [] and len(stages["reused"]) == len(counts) - 1


def test_api_example_passes_its_dry_run_without_any_key(tmp_path):
    done = run_cli("build", ROOT / "examples" / "api" / "spec.yaml", "--dry-run", "--json",
                   env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    stages = {(line["stage"], line["backend"]) for line in found["lines"]}
    assert stages == {("generate", "vllm"), ("judge", "openai"), ("judge", "anthropic")}
    assert found["requests"] > 0 and found["usd_max"] <= found["max_cost"]


def test_until_stops_after_a_stage(tmp_path):
    done = run_cli("build", ROOT / "examples" / "hh_curate" / "spec.yaml", "--output", tmp_path / "hh",
                   "--until", "curate")
    assert done.returncode == 0 and "stopped after curate" in done.stderr
    assert not (tmp_path / "hh" / "data.parquet").exists() and (tmp_path / "hh" / ".run").is_dir()
    bad = run_cli("build", ROOT / "examples" / "hh_curate" / "spec.yaml", "--output", tmp_path / "hh",
                  "--until", "nowhere")
    assert bad.returncode == 2 and "unknown stage 'nowhere'" in bad.stderr


def test_multiturn_example_passes_its_dry_run_counting_the_simulated_turns(tmp_path):
    """examples/multiturn (README: "Multi-turn conversations"); tests/test_multiturn.py builds it (slow)."""
    done = run_cli("build", ROOT / "examples" / "multiturn" / "spec.yaml", "--dry-run", "--json",
                   env={"PREFDATA_HOME": str(tmp_path)})  # an empty cache: everything is to send
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    lines = {line["name"]: line for line in found["lines"]}
    assert [line["stage"] for line in found["lines"]] == ["simulate", "simulate", "generate", "judge"]
    assert lines["assistant"]["to_send"] == lines["user_simulator"]["to_send"] == 4  # 4 prompts, one exchange each
    assert lines["generate"]["to_send"] == 8 and lines["smol-pairwise"]["to_send"] == 4 and found["requests"] == 20
