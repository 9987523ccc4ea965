"""Curation steps keep input rows = kept + dropped, with reasons, on real data."""

import polars as pl

from conftest import DPO_DEMO
from prefdata.curate import exact_dedupe
from prefdata.io import read_dataset


def test_exact_dedupe_on_the_demo_keeps_first_and_records_the_rest():
    frame = read_dataset(DPO_DEMO).frame
    result = exact_dedupe(frame)
    assert result.kept.height + result.dropped.height == frame.height
    repeats = frame.height - frame.select(pl.col("pair_id").n_unique()).item()
    assert result.dropped.height == repeats > 0
    assert set(result.dropped["reason"]) == {"exact_duplicate"}
    assert result.kept["pair_id"].n_unique() == result.kept.height
    # the first occurrence survives, in the original order
    assert result.kept["pair_id"].to_list() == frame["pair_id"].unique(maintain_order=True).to_list()


def test_dedupe_normalises_case_and_space_and_drops_identical_pairs():
    frame = read_dataset(DPO_DEMO).frame.head(3)
    loud = frame.head(1).with_columns(
        pl.col("chosen").list.eval(pl.struct(pl.element().struct.field("role"),
                                             pl.element().struct.field("content").str.to_uppercase() + "  ")),
        pl.lit(9.0).alias("margin"))
    same = frame.slice(1, 1).with_columns(pl.col("chosen").alias("rejected"))
    result = exact_dedupe(pl.concat([frame, loud, same], how="vertical_relaxed"), keep="highest_margin")
    reasons = result.dropped.group_by("reason").len().sort("reason").rows()
    assert reasons == [("exact_duplicate", 1), ("identical_chosen_rejected", 1)]
    assert result.kept.height == 3 and 9.0 in result.kept["margin"].to_list()  # highest margin survived
