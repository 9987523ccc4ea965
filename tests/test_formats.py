"""Reading every supported format, and round trips that lose nothing, on the shared real data."""

import json
import re

import polars as pl
import pytest

from conftest import DPO_DEMO, HH, KTO_DEMO, hh_rows, json_rows
from prefdata.io import read_dataset, write_table
from prefdata.io.raw import hub_dataset
from prefdata.errors import InputError

ROLE = {"human": "user", "gpt": "assistant", "system": "system", "observation": "tool",
        "function_call": "assistant"}


def turns(messages):
    return [(m["role"], m["content"]) for m in messages]


def sharegpt_expected(row):
    return {
        "prompt": [(ROLE[m["from"]], m["value"]) for m in row["conversations"]],
        "chosen": [("assistant", row["chosen"]["value"])],
        "rejected": [("assistant", row["rejected"]["value"])],
    }


def table_turns(frame, columns=("prompt", "chosen", "rejected")):
    return [{c: turns(r[c]) for c in columns} for r in frame.iter_rows(named=True)]


def test_sharegpt_demo_reads_every_row_with_roles_and_text():
    raw = json_rows(DPO_DEMO)
    result = read_dataset(DPO_DEMO)
    assert (result.format, result.kind, result.rows_in) == ("sharegpt", "pairwise", len(raw))
    assert table_turns(result.frame) == [sharegpt_expected(r) for r in raw]


def test_kto_demo_splits_prompt_and_completion():
    raw = json_rows(KTO_DEMO)
    result = read_dataset(KTO_DEMO)
    assert (result.format, result.kind) == ("sharegpt-kto", "unpaired")
    got = [(turns(r["prompt"]), turns(r["completion"]), r["label"]) for r in result.frame.iter_rows(named=True)]
    want = [(turns(r["messages"][:-1]), turns(r["messages"][-1:]), r["label"]) for r in raw]
    assert got == want


def split_transcript(text):
    parts = re.split(r"\n\n(Human|Assistant): ?", text)
    return [({"Human": "user", "Assistant": "assistant"}[s], body) for s, body in zip(parts[1::2], parts[2::2])]


def test_hh_rlhf_keeps_turns_and_sets_aside_mismatched_and_empty_rows():
    raw = hh_rows()
    result = read_dataset(HH, on_error="skip")
    want, mismatched, empty = [], 0, 0
    for row in raw:
        chosen, rejected = split_transcript(row["chosen"]), split_transcript(row["rejected"])
        if not chosen[-1][1].strip() or not rejected[-1][1].strip():
            empty += 1
        elif chosen[:-1] != rejected[:-1]:
            mismatched += 1
        else:
            want.append({"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]})
    assert mismatched > 0 and empty > 0  # the real file has both problems
    assert table_turns(result.frame) == want
    assert result.drop_counts() == {"prompt_mismatch": mismatched, "empty_text": empty}
    assert result.rows_in == len(raw) == result.frame.height + result.dropped.height
    assert any(len(r["prompt"]) > 1 for r in want)  # multi-turn prompts stay turns


def test_hh_rlhf_empty_answer_is_an_error_by_default():
    with pytest.raises(InputError) as info:
        read_dataset(HH)
    assert info.value.line is not None and info.value.field in ("chosen", "rejected")


@pytest.mark.parametrize("source", [DPO_DEMO, KTO_DEMO, HH], ids=["dpo", "kto", "hh"])
@pytest.mark.parametrize("target", ["out.jsonl", "out.parquet", "out_folder"])
@pytest.mark.parametrize("form", ["conversational", "standard"])
def test_round_trip_loses_nothing(tmp_path, source, target, form):
    original = read_dataset(source, on_error="skip")
    path = write_table(original.frame, tmp_path / target, form=form)
    again = read_dataset(path)
    assert again.rows_in == again.frame.height == original.frame.height
    columns = ("prompt", "completion") if original.kind == "unpaired" else ("prompt", "chosen", "rejected")
    assert table_turns(again.frame, columns) == table_turns(original.frame, columns)
    if original.kind == "unpaired":
        assert again.frame["label"].to_list() == original.frame["label"].to_list()
    assert again.frame["prompt_id"].to_list() == original.frame["prompt_id"].to_list()


def test_standard_form_writes_plain_strings(tmp_path):
    original = read_dataset(DPO_DEMO)
    path = write_table(original.frame, tmp_path / "s.jsonl", form="standard")
    first = json.loads(path.read_text().splitlines()[0])
    raw = json_rows(DPO_DEMO)[0]
    assert first["chosen"] == raw["chosen"]["value"] and isinstance(first["prompt"], str)
    assert read_dataset(path).format == "trl-standard"


def test_trl_implicit_prompt_is_the_common_prefix(tmp_path):
    original = read_dataset(DPO_DEMO)
    rows = [{"chosen": r["prompt"] + r["chosen"], "rejected": r["prompt"] + r["rejected"]}
            for r in original.frame.iter_rows(named=True)]
    path = tmp_path / "implicit.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_dataset(path)
    assert result.format == "trl-implicit"
    assert table_turns(result.frame) == table_turns(original.frame)


def test_trl_unpaired_and_csv(tmp_path):
    kto = read_dataset(KTO_DEMO)
    path = tmp_path / "unpaired.jsonl"
    write_table(kto.frame.select("prompt", "completion", "label"), path)
    again = read_dataset(path)
    assert again.format == "trl-unpaired" and again.frame["label"].sum() == kto.frame["label"].sum()

    pairs = read_dataset(DPO_DEMO)
    single = pairs.frame.filter(pl.col("prompt").list.len() == 1)
    csv = tmp_path / "pairs.csv"
    from prefdata.io.writers import to_standard

    to_standard(single).select("prompt", "chosen", "rejected").write_csv(csv)
    from_csv = read_dataset(csv)
    assert from_csv.format == "trl-standard"
    assert table_turns(from_csv.frame) == table_turns(single)


def test_ultrafeedback_binarises_best_over_worst_and_never_pairs_ties(tmp_path):
    # UltraFeedback's shape (instruction + rated completions), with texts from the LLaMA-Factory demo.
    demo = json_rows(DPO_DEMO)[:3]
    rows = [
        {"instruction": demo[0]["conversations"][0]["value"], "completions": [
            {"model": "m1", "response": demo[0]["chosen"]["value"], "overall_score": 8.5},
            {"model": "m2", "response": demo[0]["rejected"]["value"], "overall_score": 4.0},
            {"model": "m3", "response": "A middling answer.", "overall_score": 6.0}]},
        {"instruction": demo[1]["conversations"][0]["value"], "completions": [
            {"model": "m1", "response": demo[1]["chosen"]["value"], "overall_score": 7},
            {"model": "m2", "response": demo[1]["rejected"]["value"], "overall_score": 7}]},
        {"instruction": demo[2]["conversations"][0]["value"], "completions": [
            {"model": "m1", "response": demo[2]["chosen"]["value"], "overall_score": 9}]},
    ]
    path = tmp_path / "uf.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_dataset(path)
    assert result.format == "ultrafeedback"
    assert result.frame.height == 1
    row = result.frame.row(0, named=True)
    assert row["chosen"][0]["content"] == demo[0]["chosen"]["value"]
    assert row["rejected"][0]["content"] == demo[0]["rejected"]["value"]
    assert (row["chosen_score"], row["rejected_score"], row["margin"]) == (8.5, 4.0, 4.5)
    assert result.drop_counts() == {"ratings_tied": 1, "too_few_rated_completions": 1}


def test_ultrafeedback_binarized_strips_the_repeated_prompt(tmp_path):
    demo = json_rows(DPO_DEMO)[0]
    prompt = demo["conversations"][0]["value"]
    user = {"role": "user", "content": prompt}
    row = {"prompt": prompt, "chosen": [user, {"role": "assistant", "content": demo["chosen"]["value"]}],
           "rejected": [user, {"role": "assistant", "content": demo["rejected"]["value"]}],
           "score_chosen": 9.0, "score_rejected": 3.5}
    path = tmp_path / "ufb.jsonl"
    path.write_text(json.dumps(row) + "\n")
    result = read_dataset(path)
    assert result.format == "ultrafeedback-binarized"
    got = result.frame.row(0, named=True)
    assert turns(got["prompt"]) == [("user", prompt)]
    assert turns(got["chosen"]) == [("assistant", demo["chosen"]["value"])]
    assert got["margin"] == 5.5


def test_dataset_dict_folder_needs_a_split(tmp_path):
    import datasets

    frame = read_dataset(DPO_DEMO).frame
    dd = datasets.DatasetDict({"train": datasets.Dataset(frame.head(10).to_arrow()),
                               "test": datasets.Dataset(frame.tail(5).to_arrow())})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert read_dataset(tmp_path / "dd").frame.height == 10  # train by default
    assert read_dataset(tmp_path / "dd", split="test").frame.height == 5
    with pytest.raises(InputError, match="split"):
        read_dataset(tmp_path / "dd", split="validation")


def test_hub_loader_reads_through_load_dataset(tmp_path):
    # Same code path as a Hub id; `datasets.load_dataset` also takes a local folder of data files.
    folder = tmp_path / "repo"
    write_table(read_dataset(DPO_DEMO).frame, folder / "train.parquet")
    rows = list(hub_dataset(str(folder), split="train"))
    assert len(rows) == 300 and rows[0].row == 1 and "chosen" in rows[0].data


def test_missing_hub_dataset_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="no-such-org/no-such-dataset"):
        read_dataset("no-such-org/no-such-dataset")


@pytest.mark.parametrize("suffix", ["parquet", "jsonl"])
def test_the_table_carries_curations_split_column_aligned_with_kept_rows(tmp_path, suffix):
    """A `split` written by curation comes back on read (validators and align need no second read for it), row for
    row, also where the reader set an unreadable record aside."""
    from prefdata.curate.config import SplitConfig
    from prefdata.curate.split import assign_split

    pairs = read_dataset(DPO_DEMO).frame.head(40)
    pairs = pairs.with_columns(assign_split(pairs, SplitConfig(test_size=0.25)))
    path = tmp_path / f"split.{suffix}"
    write_table(pairs, path)
    if suffix == "jsonl":  # a broken line in the middle: set aside, and the split stays aligned
        lines = path.read_text().splitlines()
        path.write_text("\n".join(lines[:5] + ['{"prompt": broken'] + lines[5:]) + "\n")
    result = read_dataset(path, on_error="skip")
    assert result.dropped.height == (1 if suffix == "jsonl" else 0)
    assert result.frame["split"].to_list() == pairs["split"].to_list()
    assert result.frame["pair_id"].to_list() == pairs["pair_id"].to_list()
    assert "split" not in read_dataset(DPO_DEMO).frame.columns  # only where the input has one
