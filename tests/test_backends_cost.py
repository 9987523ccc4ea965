"""Cost, max_cost, dry run, generation strategies, the cache commands and secrets, through real builds
against the local test server (tests/fake_llm.py)."""

import json

import polars as pl
import pytest
import yaml

from conftest import ROOT, run_cli
from fake_llm import FakeLLM
from prefdata.backends import ChatResponse
from prefdata.backends.cost import Meter, Price, price_table
from prefdata.backends.structured import parse
from prefdata.build import build
from prefdata.context import Context
from prefdata.generate import generate
from prefdata.io import read_dataset
from prefdata.spec import GenerateSpec, load_spec

PROMPTS = ROOT / "examples" / "quickstart" / "prompts.jsonl"
SECRET = "sk-live-" + "s3cr3t" * 5


def write_spec(tmp_path, url, **extra):
    backend = {"kind": "openai", "model": "fake-gpt", "base_url": url + "/v1", "concurrency": 1,
               "api_key_env": "FAKE_LLM_KEY"}
    spec = {"name": "cost", "sources": [{"path": str(PROMPTS), "limit": 6}],
            "generate": {"backend": backend, "n": 2, "max_tokens": 40}, "judge": {"backend": backend},
            "cache": "cache.sqlite", "output": {"dir": "out"},
            "prices": {"fake-gpt": {"input": 100.0, "output": 200.0}}, **extra}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("FAKE_LLM_KEY", SECRET)
    with FakeLLM(api_key=SECRET) as fake:
        yield fake


def test_max_cost_stops_cleanly_and_a_rerun_resumes(server, tmp_path):
    spec = write_spec(tmp_path, server.url, max_cost=0.02)  # about four of the twelve generations
    result = build(spec, quiet=True)
    cost = result.manifest["cost"]
    answered = sum(server.answered.values())
    per_request = cost["usd"] / answered
    assert cost["stopped_by_max_cost"] and cost["refused"] > 0 and 0 < answered < 12
    assert 0.02 <= cost["usd"] < 0.02 + per_request * 2  # one request at a time: it stops right after the line
    assert cost["models"]["fake-gpt"]["requests"] == answered == len(server.received)
    dropped = pl.read_parquet(result.output / "dropped.parquet")
    refused = dropped.filter(pl.col("reason") == "max_cost_reached")
    assert refused.height > 0 and refused["stage"].unique().to_list() == ["generate"]
    counts = result.manifest["counts"]["generate"]
    assert counts["in"] == 12 == counts["kept"] + sum(counts["dropped"].values())
    assert pl.read_parquet(result.output / "candidates.parquet").height == counts["kept"]

    spec2 = write_spec(tmp_path, server.url)  # no budget now: finish the job, paying nothing twice
    again = build(spec2, quiet=True)
    assert set(server.answered.values()) == {1}
    assert again.manifest["cache"]["hits"] == answered
    assert again.manifest["counts"]["generate"]["kept"] == 12


def test_dry_run_counts_requests_tokens_and_cost_and_sends_nothing(server, tmp_path):
    spec = write_spec(tmp_path, server.url)
    done = run_cli("build", spec, "--dry-run", "--json", check=True)
    found = json.loads(done.stdout)
    assert len(server.received) == 0 and not (tmp_path / "out").exists()
    generate_line, judge_line = found["lines"]
    assert generate_line["requests"] == 12 and generate_line["cached"] == 0
    assert judge_line["requests"] == 6 * 1 * 2  # one comparison per prompt, judged in both orders
    assert generate_line["tokens_out_max"] == 12 * 40
    assert found["usd_max"] == pytest.approx(sum(line["usd_max"] for line in found["lines"]))
    assert found["usd_max"] > 0 and found["price_unknown"] == []

    build(spec, quiet=True)
    after = json.loads(run_cli("build", spec, "--dry-run", "--json", check=True).stdout)
    assert after["lines"][0]["cached"] == 12 and after["lines"][0]["usd_max"] == 0


def test_several_generators_and_system_prompt_contrast(server, tmp_path):
    base = {"kind": "openai", "base_url": server.url + "/v1", "api_key_env": "FAKE_LLM_KEY"}
    config = GenerateSpec.model_validate({
        "backends": [{**base, "model": "gen-a"}, {**base, "model": "gen-b"}], "n": 4,
        "temperatures": [0.2, 0.9], "contrast": {"good": "Answer with care.", "bad": "Answer carelessly."}})
    prompts = read_dataset(PROMPTS).frame.head(3)
    result = generate(prompts, config, Context(quiet=True))
    kept = result.kept
    assert kept.height == 3 * 4 * 2 and result.dropped.height == 0
    assert kept.group_by("model").len().sort("model").rows() == [("gen-a", 12), ("gen-b", 12)]
    params = [json.loads(p) for p in kept["params"]]
    assert sorted({(p["sample"], p["system"], p["temperature"]) for p in params}) == [
        (0, "good", 0.2), (1, "bad", 0.9), (2, "good", 0.2), (3, "bad", 0.9)]
    systems = [b["messages"][0]["content"] for b in server.bodies()]
    assert systems.count("Answer with care.") == systems.count("Answer carelessly.") == 12
    assert {b["model"] for b in server.bodies()} == {"gen-a", "gen-b"}
    assert kept["candidate_id"].n_unique() == kept.height


def test_cache_stats_and_clear(server, tmp_path):
    build(write_spec(tmp_path, server.url), quiet=True)
    cache = tmp_path / "cache.sqlite"
    stats = json.loads(run_cli("cache", "stats", "--cache", cache, "--json", check=True).stdout)
    [model] = stats["models"]
    assert model["model"] == "fake-gpt" and model["backend"] == "openai"
    assert model["responses"] == stats["responses"] == sum(server.answered.values()) and model["tokens_in"] > 0
    cleared = run_cli("cache", "clear", "--cache", cache, "--model", "other-model", check=True)
    assert "0 cached answers removed" in cleared.stderr
    cleared = run_cli("cache", "clear", "--cache", cache, "--model", "fake-gpt", check=True)
    assert f"{stats['responses']} cached answers removed" in cleared.stderr
    assert json.loads(run_cli("cache", "stats", "--cache", cache, "--json", check=True).stdout)["responses"] == 0


def test_the_key_reaches_no_file_and_no_log(server, tmp_path):
    spec = write_spec(tmp_path, server.url)
    done = run_cli("build", spec, check=True, env={"FAKE_LLM_KEY": SECRET})
    assert SECRET not in done.stderr + done.stdout
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "cache.sqlite" for p in written) and any(p.name == "manifest.json" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["spec"]["generate"]["backend"][
        "api_key_env"] == "FAKE_LLM_KEY"


def test_a_key_in_the_spec_is_refused(tmp_path):
    (tmp_path / "spec.yaml").write_text(f"name: x\nsources: [{{path: {PROMPTS}}}]\ngenerate:\n  backend:\n"
                                        f"    kind: openai\n    model: gpt-4o-mini\n    api_key: {SECRET}\n")
    done = run_cli("build", tmp_path / "spec.yaml")
    assert done.returncode == 2 and "api_key_env" in done.stderr and SECRET not in done.stderr
    assert "Traceback" not in done.stderr


def test_meter_prices_and_budget():
    meter = Meter(price_table({"gpt-4o-mini": {"input": 1.0, "output": 3.0}, "mine": (2, 4)}), max_cost=0.01)
    assert meter.prices["gpt-4o-mini"] == Price(1.0, 3.0) and meter.prices["gpt-4o"] == Price(2.5, 10.0)
    meter.record("openai", "gpt-4o-mini", ChatResponse("x", "stop", 1000, 1000), cached=False)
    meter.record("openai", "gpt-4o-mini", ChatResponse("x", "stop", 5000, 5000), cached=True)  # free
    meter.record("transformers", "local", ChatResponse("x", "stop", 10**6, 10**6), cached=False)  # free
    meter.record("openai", "unknown-model", ChatResponse("x", "stop", 10**6, 0), cached=False)
    assert meter.spent == pytest.approx(0.004) and not meter.exhausted
    assert meter.summary()["models"]["unknown-model"]["price_known"] is False
    meter.record("anthropic", "mine", ChatResponse("x", "stop", 1000, 1000), cached=False)
    assert meter.spent == pytest.approx(0.010) and meter.exhausted


@pytest.mark.parametrize("text, ok", [('{"name": "a", "score": 2}', True), ('```json\n{"name": "a", "score": 2}\n```',
                                                                          True),
                                      ("{'name': 'a', 'score': 2,}", True), ('{"name": "a"}', False),
                                      ('{"name": "a", "score": "two"}', False), ("no json here", False),
                                      ("__import__('os').system('true')", False)])
def test_structured_answers_are_parsed_as_data(text, ok):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
              "required": ["name", "score"]}
    value, why = parse(text, schema)
    assert (why is None) == ok and (value == {"name": "a", "score": 2} if ok else value is None)


def test_spec_accepts_the_new_fields(tmp_path):
    spec = load_spec(write_spec(tmp_path, "http://127.0.0.1:9", max_cost=2.5))
    assert spec.max_cost == 2.5 and spec.prices["fake-gpt"].output == 200.0
    assert spec.generate.backend.kind == "openai" and spec.generate.backend.api_key_env == "FAKE_LLM_KEY"
