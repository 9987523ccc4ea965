"""Streamed curation (prefdata/curate/streamed.py) keeps and drops exactly the rows in-memory curation does, on
real pairs (HH-RLHF) with planted exact and near copies, read in many small chunks."""

import numpy as np
import polars as pl
import pytest

from conftest import HH
from prefdata.curate import run_steps
from prefdata.curate.config import DedupeConfig, FilterConfig, NearDedupeConfig, SplitConfig
from prefdata.curate.streamed import curate_streamed
from prefdata.errors import PrefdataError
from prefdata.io import read_dataset


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """HH-RLHF's pairs, with 300 copies: 50 upper-cased (exact after normalisation), the rest with one word of the
    chosen answer changed (near, or exact where the answer is too short to change), and a margin column (random)
    for keep: highest_margin."""
    frame = read_dataset(HH, on_error="skip").frame
    rng = np.random.default_rng(0)
    picked = frame.sample(300, seed=1)

    def edit(turns, upper):
        last = dict(turns[-1])
        words = last["content"].split()
        if not upper and len(words) > 8:
            words[len(words) // 2] = "zebra"
        last["content"] = " ".join(words).upper() if upper else " ".join(words)
        return turns[:-1] + [last]

    copies = picked.with_columns(
        pl.Series("chosen", [edit(t, i % 3 == 0 and i < 150) for i, t in enumerate(picked["chosen"].to_list())]),
        (pl.col("pair_id") + "-copy").alias("pair_id"))
    full = pl.concat([frame, copies], how="vertical_relaxed")
    full = full.with_columns(pl.Series("margin", rng.normal(size=full.height)))
    full = full.sample(fraction=1.0, shuffle=True, seed=2)  # copies anywhere, in any chunk
    path = tmp_path_factory.mktemp("streamed") / "pairs.parquet"
    full.write_parquet(path, row_group_size=500)
    return path, full


def _sorted(dropped: pl.DataFrame) -> pl.DataFrame:
    return dropped.select("stage", "reason", "detail", "row_id", "record").sort("stage", "row_id")


@pytest.mark.parametrize("keep, verify", [("first", "exact"), ("highest_margin", "signature")])
def test_streamed_keeps_and_drops_what_memory_does(pairs, tmp_path, keep, verify):
    path, frame = pairs
    configs = [DedupeConfig(keep=keep), NearDedupeConfig(threshold=0.8, keep=keep, verify=verify),
               FilterConfig(min_length=5, max_length_ratio=20), SplitConfig(test_size=0.1)]
    kept, dropped, _ = run_steps(frame, configs)
    figures = curate_streamed(path, configs, tmp_path / "kept.parquet", tmp_path / "dropped.parquet", chunk_rows=333)
    streamed_kept = pl.read_parquet(tmp_path / "kept.parquet")
    streamed_dropped = pl.read_parquet(tmp_path / "dropped.parquet")
    assert streamed_kept.equals(kept)  # the same rows, columns (split included) and order
    assert _sorted(streamed_dropped).equals(_sorted(dropped))  # the same drops, reasons, details and records
    reasons = dict(dropped.group_by("reason").len().iter_rows())
    assert figures == {"rows_in": frame.height, "rows_out": kept.height, "dropped": dict(sorted(reasons.items()))}
    assert reasons["exact_duplicate"] >= 50 and reasons["near_duplicate"] >= 150, reasons  # planted copies found


def test_unsupported_steps_and_inputs_are_refused(pairs, tmp_path):
    from prefdata.curate.config import BalanceConfig

    path, _ = pairs
    with pytest.raises(PrefdataError, match="not length_balance"):
        curate_streamed(path, [BalanceConfig()], tmp_path / "k.parquet", tmp_path / "d.parquet")
    (tmp_path / "pairs.jsonl").write_text("{}\n")
    with pytest.raises(PrefdataError, match="reads Parquet"):
        curate_streamed(tmp_path / "pairs.jsonl", [DedupeConfig()], tmp_path / "k.parquet", tmp_path / "d.parquet")


def test_the_commands_streamed_write_what_they_write_in_memory(pairs, tmp_path):
    import json

    from conftest import run_cli

    _, frame = pairs
    path = tmp_path / "pairs.parquet"  # the streamed commands read Parquet as prefdata writes it: not re-checked,
    frame.drop("margin").write_parquet(path, row_group_size=400)  # so no margin the reader would recompute
    streamed = run_cli("dedupe", path, tmp_path / "s.parquet", "--near", "--streamed", "--json", check=True)
    run_cli("dedupe", path, tmp_path / "m.parquet", "--near", check=True)
    assert pl.read_parquet(tmp_path / "s.parquet").equals(pl.read_parquet(tmp_path / "m.parquet"))
    figures = json.loads(streamed.stdout)
    dropped = pl.read_parquet(tmp_path / "s.dropped.parquet")
    assert figures["rows_in"] == figures["rows_out"] + dropped.height and figures["dropped_file"]
    assert run_cli("filter", path, tmp_path / "f.parquet", "--min-length", "5", "--streamed", check=True)
    for args, says in ((("dedupe", path, tmp_path / "x.jsonl", "--streamed"), "writes Parquet"),
                       (("dedupe", path, tmp_path / "x.parquet", "--semantic", "--streamed"), "--semantic")):
        done = run_cli(*args)
        assert done.returncode == 2 and says in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_the_length_bias_report_streamed_is_the_in_memory_one(pairs):
    from prefdata.curate.length_bias import length_bias_report
    from prefdata.curate.streamed import length_bias_streamed

    path, frame = pairs
    for unit in ("chars", "words"):
        assert length_bias_streamed(path, unit, chunk_rows=250) == length_bias_report(frame, unit)
