"""`build --dry-run` counts what a build would send exactly where the inputs are cached: after a complete
build nothing is left to send (gold items and both orders included), each judge has its own row, and
judging of answers not generated yet is estimated and says so."""

import json

import yaml

from conftest import ROOT, run_cli
from fake_llm import FakeLLM

QUICKSTART = ROOT / "examples" / "quickstart"


def _spec(work, url, limit):
    backend = {"kind": "openai", "model": "fake-gpt", "base_url": url + "/v1", "concurrency": 4}
    spec = {"name": "dry", "sources": [{"path": str(QUICKSTART / "prompts.jsonl"), "limit": limit}],
            "generate": {"backend": backend, "n": 2, "max_tokens": 20},
            "judges": [{"name": "first", "backend": backend, "max_tokens": 60},   # the same backend twice:
                       {"name": "second", "backend": backend, "max_tokens": 60}],  # rows told apart by judge
            "gold": {"path": str(QUICKSTART / "gold.jsonl")}, "cache": "cache.sqlite"}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    return work / "spec.yaml"


def _dry(spec):
    done = run_cli("build", spec, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    return found, {line["name"]: line for line in found["lines"]}


def test_dry_run_after_a_build_has_nothing_to_send(tmp_path):
    with FakeLLM() as fake:
        spec = _spec(tmp_path, fake.url, limit=3)
        before, lines = _dry(spec)
        # 3 prompts x 2 answers; per judge: 4 gold items and 3 comparisons, each in both orders
        assert lines["generate"]["to_send"] == 6 and lines["generate"]["cached"] == 0
        for judge in ("first", "second"):
            assert lines[judge]["requests"] == 14 and lines[judge]["estimated"] == 6  # gold is exact
        # the second judge asks the very same gold requests: the build finds the first one's answers cached
        assert lines["second"]["cached"] == 8 and before["requests"] == 6 + 14 + 6
        built = run_cli("build", spec, "--output", tmp_path / "out")
        assert built.returncode in (0, 1), built.stderr
        answered = sum(fake.answered.values())
        after, lines = _dry(spec)
    assert after["requests"] == 0 and after["estimated"] == 0
    assert after["cached"] == sum(line["requests"] for line in after["lines"]) == 6 + 14 + 14
    assert answered == 6 + 14  # two judges asking the very same requests share the cached answers
    assert [line["name"] for line in after["lines"]] == ["generate", "first", "second"]
    assert lines["first"]["cached"] == lines["second"]["cached"] == 14 - _identical(tmp_path) * 2


def _identical(work) -> int:
    """Comparisons of identical answers need no judge (the build drops them): the replay knows it too."""
    import polars as pl

    dropped = pl.read_parquet(work / "out" / "dropped.parquet")
    return dropped.filter(pl.col("reason") == "identical_candidates").height


def test_dry_run_counts_cached_prompts_exactly_and_estimates_the_rest(tmp_path):
    with FakeLLM() as fake:
        spec = _spec(tmp_path, fake.url, limit=2)
        assert run_cli("build", spec, "--output", tmp_path / "out").returncode in (0, 1)
        more = yaml.safe_load(spec.read_text())
        more["sources"][0]["limit"] = 5
        spec.write_text(yaml.safe_dump(more))
        found, lines = _dry(spec)
    assert (lines["generate"]["requests"], lines["generate"]["cached"], lines["generate"]["to_send"]) == (10, 4, 6)
    # judged exactly: 4 gold items and the 2 cached prompts (cached); estimated: 3 new prompts x 2 orders
    assert lines["first"]["cached"] == 8 + 4 and lines["first"]["estimated"] == 6 and lines["first"]["to_send"] == 6
    text = run_cli("build", spec, "--dry-run").stdout
    assert "to send: 18 requests" in text and "12 estimated" in text


def test_dry_run_walks_the_builds_stage_list(tmp_path, monkeypatch):
    """The dry run runs the stages `prefdata.flow.stages` gives, in order, up to the judge: a stage added to that
    list (here one that keeps the first prompt) changes what the dry run counts, with no change to the dry run."""
    import dataclasses

    from prefdata import dryrun, flow
    from prefdata.schema import DROPPED, empty
    from prefdata.spec import load_spec
    from prefdata.stage import Output, Stage

    real, ran = flow.stages, []

    def spied(*args, **kwargs):
        found = real(*args, **kwargs)
        first = Stage("simulate", ("prompts",), "prompts",
                      lambda flow_: Output(flow_.tables["prompts"].head(1), empty(DROPPED)))
        found = found[:1] + [first] + found[1:]

        def recorded(stage):
            return dataclasses.replace(stage, run=lambda flow_: (ran.append(stage.name), stage.run(flow_))[1])
        return [recorded(stage) for stage in found]

    monkeypatch.setattr(flow, "stages", spied)
    with FakeLLM() as fake:
        found = dryrun.estimate(load_spec(_spec(tmp_path, fake.url, limit=3)))
        assert sum(fake.answered.values()) == 0  # a dry run sends nothing
    assert ran == ["sources", "simulate", "generate", "judge"]  # no pair, curation or validation
    lines = {line["name"]: line for line in found["lines"]}
    assert found["prompts"] == 3 and lines["generate"]["requests"] == 1 * 2  # one prompt left, n = 2
