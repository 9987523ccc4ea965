"""`align iterate`: on-policy rounds, each generating with the previous round's model (a tiny random-weight
Llama here, so the rounds run in a minute), judged by a local OpenAI-compatible server, curated, validated and
trained; a second run reuses every round."""

import json
import os

import polars as pl
import pytest
import yaml

from tests.align_fixtures import stamped_pairs, tiny_model  # noqa: F401  (fixtures)
from conftest import DPO_DEMO, ROOT
from fake_llm import FakeLLM

pytestmark = pytest.mark.slow


def _align(*args, env=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "prefdata.align.cli", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "OPENAI_API_KEY": "test", **(env or {})})


def _spec(work, url):
    spec = {
        "name": "iterate-test", "sources": [{"path": str(DPO_DEMO), "limit": 16}],
        "generate": {"backend": {"kind": "embedded"}, "n": 2, "temperatures": [0.7, 1.0], "max_tokens": 12},
        "judges": [{"name": "fake", "kind": "pairwise", "retries": 0,
                    "backend": {"kind": "openai", "model": "fake-judge", "base_url": url + "/v1",
                                "max_attempts": 1}}],
        "curate": ["dedupe"], "cache": str(work / "cache.sqlite"),
        "validation": {"min_pairs": 4},
    }
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    train = {"method": "dpo", "profile": "cpu", "max_steps": 2, "batch_size": 2, "max_length": 512,
             "eval_fraction": 0.25, "final_eval": True}
    (work / "train.yaml").write_text(yaml.safe_dump(train))
    return work / "spec.yaml", work / "train.yaml"


def test_two_rounds_generate_with_the_last_policy_and_resume(tmp_path, tiny_model, stamped_pairs):  # noqa: F811
    with FakeLLM() as fake:
        spec, train = _spec(tmp_path, fake.url)
        args = ("iterate", spec, "--rounds", "2", "--train", train, "--model", tiny_model,
                "--output", tmp_path / "rounds", "--eval", stamped_pairs)
        done = _align(*args)
        assert done.returncode == 0, done.stderr[-3000:]
        record = json.loads((tmp_path / "rounds" / "iterate.json").read_text())
        first, second = record["rounds"]
        assert first["policy"] == str(tiny_model) and second["policy"] == first["model"]
        for r in (first, second):
            data = tmp_path / "rounds" / f"round-{r['round']}" / "data"
            manifest = json.loads((data / "manifest.json").read_text())
            assert manifest["validation"]["passed"] and r["fingerprint"] == manifest["fingerprint"]
            assert r["pairs"] == pl.read_parquet(data / "data.parquet").height >= 4
            assert r["steps"] == 2 and "eval_rewards/accuracies" in r["held_out"]
            assert "eval_rewards/accuracies" in r["eval"]["reward"]  # the fixed set, against the starting model
            assert (tmp_path / "rounds" / f"round-{r['round']}" / "train" / "README.md").is_file()
        # round 2's candidates came from round 1's model: its weights' hash names them
        models = set(pl.read_parquet(tmp_path / "rounds" / "round-2" / "data" / "candidates.parquet")["model"])
        assert models == {f"model@{_weights(first['model'])}"}
        assert set(pl.read_parquet(tmp_path / "rounds" / "round-1" / "data" / "candidates.parquet")["model"]) \
            == {f"{tiny_model.name}@{_weights(tiny_model)}"}
        table = (tmp_path / "rounds" / "README.md").read_text()
        assert "| 1 | " in table and "| 2 | " in table and "eval accuracy" in table
        sent = len(fake.received)
        again = _align(*args)
        assert again.returncode == 0, again.stderr[-3000:]
        assert len(fake.received) == sent  # nothing asked twice
        rounds = json.loads((tmp_path / "rounds" / "iterate.json").read_text())["rounds"]
        assert [r["training_reused"] for r in rounds] == [True, True]
        assert [r["build_stages"]["ran"] for r in rounds] == [[], []]
        assert [r["fingerprint"] for r in rounds] == [first["fingerprint"], second["fingerprint"]]


def _weights(folder):
    from prefdata.backends.weights import weights_id

    return weights_id(folder).split("@")[1]


def test_refusals_are_one_line(tmp_path):
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"method": "dpo", "profile": "cpu", "model": str(tmp_path)}))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"name": "x", "sources": [{"path": str(DPO_DEMO)}],
                                                     "generate": None}))
    (tmp_path / "g.yaml").write_text(yaml.safe_dump({"name": "x", "sources": [{"path": str(DPO_DEMO)}]}))
    for args, said in [(("--rounds", "2"), "generate"), (("--rounds", "0"), "--rounds"),
                       (("--rounds", "1", "--model", str(tmp_path / "missing")), "no such model folder")]:
        spec = tmp_path / ("g.yaml" if "--model" in args else "s.yaml")
        done = _align("iterate", spec, "--train", tmp_path / "t.yaml", "--output", tmp_path / "o", *args)
        assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
