"""Every stage of a build goes through the one stage contract (prefdata/stage.py): sources, simulate, generate,
judge, pair, each curation step, the review and validate. A build with all of them, against the local fake
server, with rows dropped at each one (a source limit and a repeated source, a failed generation, identical
answers, an unreadable verdict, duplicates, a length filter, a person's drop), checks rows in = kept + dropped
for every stage as the runner saw it, and that every dropped row reaches dropped.parquet."""

import json

import polars as pl
import pytest
import yaml

import prefdata.runner
from conftest import DPO_DEMO, ROOT
from fake_llm import FakeLLM
from prefdata.build import build
from prefdata.context import Context
from prefdata.flow import stages
from prefdata.review import log
from prefdata.spec import load_spec
from prefdata.stage import check_rows

QUICKSTART = ROOT / "examples" / "quickstart"
ORDER = ["sources", "simulate", "generate", "judge", "pair", "curate.0.dedupe", "curate.1.filter", "review",
         "validate"]


def _spec(work, url):
    backend = {"kind": "openai", "model": "fake-gpt", "base_url": url + "/v1", "concurrency": 2, "max_attempts": 1}
    spec = {"name": "contract",
            "sources": [{"path": str(DPO_DEMO), "limit": 5}, {"path": str(DPO_DEMO), "limit": 2}],  # repeats
            "generate": {"backend": backend, "n": 3, "max_tokens": 20, "turns": 2},
            "judges": [{"name": "j", "backend": backend, "retries": 0}], "panel": {"pairing": "all_pairs"},
            "gold": {"path": str(QUICKSTART / "gold.jsonl")},
            "curate": [{"step": "dedupe", "level": "prompt"}, {"step": "filter", "max_length": 400}],
            "cache": "cache.sqlite"}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    return work / "spec.yaml"


def _kind(body):
    text = json.dumps(body["messages"])
    if "impartial judge" in text:
        return "judge"
    return "simulator" if "Imagine you are the USER" in text else "assistant"


def _final(body):  # an answer to the second user turn: the generate stage (turn 1 is the simulate stage's)
    return _kind(body) == "assistant" and sum(m["role"] == "user" for m in body["messages"]) == 2


def _script(body):
    """Every sample of one prompt gives the same answer (identical candidates, dropped by the judge stage); the
    verdicts on another prompt cannot be read (dropped by the pair stage)."""
    text = json.dumps(body["messages"])
    if _final(body) and "job interview" in text:
        return "The same answer for every sample."
    if _kind(body) == "judge" and "parts-of-speech" in text:
        return "no verdict here"
    return None


def _fails(body):
    """The answers to one prompt fail (dropped by the generate stage as generation_failed)."""
    return _final(body) and "tee-up email" in json.dumps(body["messages"])


@pytest.fixture
def seen(monkeypatch):
    """Every stage the runner checked, with its figures (the real check, recorded)."""
    found = []

    def record(stage, flow, output):
        rows_in = check_rows(stage, flow, output)
        found.append({"stage": stage.name, "in": rows_in, "kept": stage.units(output.kept),
                      "dropped": output.dropped.height})
        return rows_in

    monkeypatch.setattr(prefdata.runner, "check_rows", record)
    return found


def test_every_stage_of_a_build_keeps_rows_in_equal_to_kept_plus_dropped(tmp_path, seen):
    with FakeLLM() as fake:
        fake.script, fake.fail_if = _script, _fails
        spec = _spec(tmp_path, fake.url)
        first = build(spec, tmp_path / "out", quiet=True)
        pair_id = pl.read_parquet(tmp_path / "out" / "data.parquet")["pair_id"][0]
        log.append(log.log_path(tmp_path / "out"), log.Decision(pair_id=pair_id, decision="drop", reason="off"))
        seen.clear()
        second = build(spec, tmp_path / "out", quiet=True)

    assert [s.name for s in stages(load_spec(spec), Context(), tmp_path / "out", None)] == ORDER
    assert [s["stage"] for s in seen] == ORDER  # the second build: every stage through the runner's check
    # generate and judge run again (a failed request, an unreadable verdict: retried), then the new review; the
    # rest is reused from the first build, and still checked
    assert second.manifest["stages"]["ran"] == ["generate", "judge", "review"]
    assert second.manifest["stages"]["reused"] == ["simulate", "pair", "curate.0.dedupe", "curate.1.filter"]
    for s in seen:
        assert s["in"] == s["kept"] + s["dropped"], s
    dropped_at = {s["stage"]: s["dropped"] for s in seen}
    assert dropped_at["review"] == 1 and dropped_at["validate"] == 0
    for stage in ("sources", "generate", "judge", "pair", "curate.0.dedupe"):
        assert dropped_at[stage] > 0, (stage, seen)  # each stage really dropped something here
    manifest = second.manifest
    for name, counts in manifest["counts"].items():
        assert counts["in"] == counts["kept"] + sum(counts["dropped"].values()), (name, counts)
    # every row any stage dropped reaches dropped.parquet, with its reason
    file = pl.read_parquet(tmp_path / "out" / "dropped.parquet")
    assert file.height == sum(dropped_at.values()) == second.dropped
    assert first.pairs - 1 == second.pairs
    # the chain: what one stage keeps is what the next one takes in (simulate, judge and pair count their units)
    by = {s["stage"]: s for s in seen}
    assert by["sources"]["kept"] == by["simulate"]["in"]
    assert by["pair"]["kept"] == by["curate.0.dedupe"]["in"]
    assert by["curate.1.filter"]["kept"] == by["review"]["in"] == by["validate"]["in"] + 1
