"""Resumable stages: reuse when inputs and config match, re-run otherwise, --from / --until / --fresh."""

import re

import polars as pl
import pytest

from conftest import DPO_DEMO
from prefdata.curate.dedupe import exact as exact_dedupe
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset
from prefdata import schema
from prefdata.runner import Runner, StageSkipped
from prefdata.stage import Flow, Output, RowsLost, Stage


@pytest.fixture(scope="module")
def pairs():
    return read_dataset(DPO_DEMO).frame


def counted(name, calls, config=None, group=None):
    """A dedupe stage on the flow's `data` that records each time it really runs."""
    def run(flow):
        calls.append(name)
        result = exact_dedupe(flow.tables["data"])
        return Output(result.kept, result.dropped, {"side": result.kept.head(2)}, {"note": "dedupe"})
    return Stage(name, ("data",), "data", run, lambda flow: config, group=group)


def flow_of(frame):
    return Flow(tables={"data": frame})


def test_same_inputs_and_config_reuse_the_saved_stage(tmp_path, pairs):
    calls = []
    first, again = flow_of(pairs), flow_of(pairs)
    Runner(tmp_path).run(counted("curate", calls, {"keep": "first"}), first)
    Runner(tmp_path).run(counted("curate", calls, {"keep": "first"}), again)
    assert len(calls) == 1
    assert again.tables["data"].equals(first.tables["data"]) and again.dropped[0].equals(first.dropped[0])
    assert again.returned["curate"]["note"] == "dedupe" and again.tables["side"].equals(first.tables["side"])
    assert again.counts == first.counts == {"curate": {"in": pairs.height, "kept": first.tables["data"].height,
                                                       "dropped": {"exact_duplicate": pairs.height
                                                                   - first.tables["data"].height}}}


def test_changed_input_or_config_runs_again(tmp_path, pairs):
    calls = []
    Runner(tmp_path).run(counted("curate", calls, {"keep": "first"}), flow_of(pairs))
    Runner(tmp_path).run(counted("curate", calls, {"keep": "highest_margin"}), flow_of(pairs))
    changed = pairs.with_columns(pl.col("source").str.to_uppercase())
    Runner(tmp_path).run(counted("curate", calls, {"keep": "highest_margin"}), flow_of(changed))
    assert len(calls) == 3


def test_fresh_and_from_force_stages(tmp_path, pairs):
    calls = []
    Runner(tmp_path).run(counted("pair", calls), flow_of(pairs))
    Runner(tmp_path).run(counted("curate", calls), flow_of(pairs))
    rerun = Runner(tmp_path, start="curate")
    rerun.run(counted("pair", calls), flow_of(pairs))
    rerun.run(counted("curate", calls), flow_of(pairs))
    assert len(calls) == 3 and rerun.reused == ["pair"] and rerun.ran == ["curate"]
    Runner(tmp_path, fresh=True).run(counted("pair", calls), flow_of(pairs))
    assert len(calls) == 4


def test_until_stops_after_the_stage_with_it_saved(tmp_path, pairs):
    calls = []
    with pytest.raises(StageSkipped):
        Runner(tmp_path, until="pair").run(counted("pair", calls), flow_of(pairs))
    assert (tmp_path / "pair.json").is_file()
    with pytest.raises(PrefdataError, match="unknown stage"):
        Runner(tmp_path, until="nope")


def test_a_stage_that_fails_leaves_no_marker(tmp_path, pairs):
    def boom(flow):
        raise RuntimeError("killed")
    with pytest.raises(RuntimeError):
        Runner(tmp_path).run(Stage("judge", ("data",), "data", boom), flow_of(pairs))
    assert not (tmp_path / "judge.json").exists()


@pytest.mark.parametrize("lose", [1, -2])
def test_a_stage_that_loses_or_invents_rows_is_stopped_and_not_saved(tmp_path, pairs, lose):
    """Rows in = kept + dropped is checked for every stage: a row that vanishes (or appears) is a bug, reported
    with the stage and the count, and the flow does not take the output."""
    def leaky(flow):
        data = flow.tables["data"]
        kept = data.head(data.height - lose) if lose > 0 else pl.concat([data, data.head(-lose)])
        return Output(kept, schema.empty(schema.DROPPED))
    flow = flow_of(pairs)
    said = f"stage filter: {pairs.height} rows in but {pairs.height - lose} kept and 0 dropped: {lose:+d} rows"
    with pytest.raises(RowsLost, match=re.escape(said)):
        Runner(tmp_path).run(Stage("filter", ("data",), "data", leaky, group="curate"), flow)
    assert flow.tables["data"] is pairs and flow.counts == {}


def test_stage_groups_are_the_build_order():
    with pytest.raises(ValueError, match="not one of"):
        Stage("nope", (), "data", lambda flow: None)


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
