"""Resumable stages: reuse when inputs and config match, re-run otherwise, --from / --until / --fresh."""

import polars as pl
import pytest

from conftest import DPO_DEMO
from prefdata.curate.dedupe import exact as exact_dedupe
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset
from prefdata.runner import Runner, StageSkipped


@pytest.fixture(scope="module")
def pairs():
    return read_dataset(DPO_DEMO).frame


def counted(frame, calls):
    def run():
        calls.append(1)
        result = exact_dedupe(frame)
        return result, {"note": "dedupe", "side": result.kept.head(2)}
    return run


def test_same_inputs_and_config_reuse_the_saved_stage(tmp_path, pairs):
    calls = []
    first, extras = Runner(tmp_path).stage("curate", [pairs], {"keep": "first"}, counted(pairs, calls))
    again, extras_again = Runner(tmp_path).stage("curate", [pairs], {"keep": "first"}, counted(pairs, calls))
    assert len(calls) == 1
    assert again.kept.equals(first.kept) and again.dropped.equals(first.dropped)
    assert extras_again["note"] == "dedupe" and extras_again["side"].equals(extras["side"])


def test_changed_input_or_config_runs_again(tmp_path, pairs):
    calls = []
    Runner(tmp_path).stage("curate", [pairs], {"keep": "first"}, counted(pairs, calls))
    Runner(tmp_path).stage("curate", [pairs], {"keep": "highest_margin"}, counted(pairs, calls))
    changed = pairs.with_columns(pl.col("source").str.to_uppercase())
    Runner(tmp_path).stage("curate", [changed], {"keep": "highest_margin"}, counted(changed, calls))
    assert len(calls) == 3


def test_fresh_and_from_force_stages(tmp_path, pairs):
    calls = []
    Runner(tmp_path).stage("pair", [pairs], {}, counted(pairs, calls))
    Runner(tmp_path).stage("curate", [pairs], {}, counted(pairs, calls))
    rerun = Runner(tmp_path, start="curate")
    rerun.stage("pair", [pairs], {}, counted(pairs, calls))
    rerun.stage("curate", [pairs], {}, counted(pairs, calls))
    assert len(calls) == 3 and rerun.reused == ["pair"] and rerun.ran == ["curate"]
    Runner(tmp_path, fresh=True).stage("pair", [pairs], {}, counted(pairs, calls))
    assert len(calls) == 4


def test_until_stops_after_the_stage_with_it_saved(tmp_path, pairs):
    calls = []
    with pytest.raises(StageSkipped):
        Runner(tmp_path, until="pair").stage("pair", [pairs], {}, counted(pairs, calls))
    assert (tmp_path / "pair.json").is_file()
    with pytest.raises(PrefdataError, match="unknown stage"):
        Runner(tmp_path, until="nope")


def test_a_stage_that_fails_leaves_no_marker(tmp_path, pairs):
    def boom():
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        Runner(tmp_path).stage("judge", [pairs], {}, boom)
    assert not (tmp_path / "judge.json").exists()


def test_build_until_sources_stops_before_anything_else(tmp_path):
    """A curation-only build (examples/hh_curate) stopped after its sources writes no data; stages it has
    not got (generate, judge, pair) are an error rather than a full run."""
    from conftest import ROOT
    from prefdata.build import build

    spec = ROOT / "examples" / "hh_curate" / "spec.yaml"
    result = build(spec, tmp_path / "out", quiet=True, until="sources")
    assert result.stopped_after == "sources" and not (tmp_path / "out" / "data.parquet").exists()
    for stage in ("generate", "judge", "pair"):
        with pytest.raises(PrefdataError, match=f"no {stage} stage"):
            build(spec, tmp_path / "out", quiet=True, until=stage)
