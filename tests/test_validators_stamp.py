"""The validation stamp: written beside the data, stale after any changed byte, read by `check_stamp`."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from conftest import KTO_DEMO, run_cli
from prefdata.fingerprint import fingerprint
from prefdata.io import read_dataset, write_table
from prefdata.validators.api import validate
from prefdata.validators.stamp import check_stamp, stamp_path
from validators_planted import pair_records, to_frame

LOOSE = {"min_pairs": 100, "max_encoding_problem_share": 0.01}


@pytest.fixture()
def kto(tmp_path):
    path = tmp_path / "kto.json"
    shutil.copy(KTO_DEMO, path)  # a scratch copy: the stamp is written beside it
    return path


def flip_byte(path, old: bytes, new: bytes) -> None:
    blob = path.read_bytes()
    assert len(old) == len(new) and blob.count(old) >= 1
    path.write_bytes(blob.replace(old, new, 1))


def test_passing_validation_stamps_the_data(kto):
    report = validate(kto, thresholds=LOOSE)
    assert report.passed
    stamp = json.loads(stamp_path(kto).read_text())
    assert stamp_path(kto).name == "kto.json.validation.json"
    assert stamp["passed"] and stamp["fingerprint"] == fingerprint(read_dataset(kto).frame)
    assert {c["name"] for c in stamp["checks"]} >= {"schema", "kto_label_balance", "encoding"}
    assert stamp["settings"]["thresholds"]["min_pairs"] == 100
    status = check_stamp(kto)
    assert status.ok and status.state == "valid"


def test_one_changed_byte_makes_the_stamp_stale(kto):
    validate(kto, thresholds=LOOSE)
    flip_byte(kto, b"Paris", b"Parus")
    status = check_stamp(kto)
    assert status.state == "stale" and not status.ok and "kto.json" in status.message


def test_a_formatting_only_change_is_stale_too_but_content_fingerprint_tells_them_apart(kto):
    validate(kto, thresholds=LOOSE)
    kto.write_text(json.dumps(json.loads(kto.read_text()), indent=1), encoding="utf-8")
    assert check_stamp(kto).state == "stale"  # bytes bind the stamp
    assert fingerprint(read_dataset(kto).frame) == json.loads(stamp_path(kto).read_text())["fingerprint"]


def test_missing_and_failed_stamps(kto):
    assert check_stamp(kto).state == "missing"
    report = validate(kto, thresholds={"min_pairs": 1000})  # failed warnings (size, encoding) still pass
    assert report.passed and report.warnings == 2 and check_stamp(kto).ok
    records = pair_records(50)
    records[0]["rejected"] = records[0]["chosen"]
    data = write_table(to_frame(records), kto.parent / "pairs.jsonl")
    failed = validate(data, thresholds=LOOSE)
    assert not failed.passed
    status = check_stamp(data)
    assert status.state == "failed" and "chosen_differs" in status.message


def test_dataset_folder_stamp_and_frame_fingerprint(tmp_path):
    folder = tmp_path / "set"
    frame = to_frame(pair_records(120))
    write_table(frame, folder / "data.parquet")
    assert validate(folder, thresholds={"min_pairs": 100}).passed
    assert (folder / "validation.json").is_file()
    read = read_dataset(folder).frame
    assert check_stamp(folder, frame=read).ok
    assert check_stamp(folder, frame=read.with_columns(pl.col("source").str.to_uppercase())).state == "stale"
    write_table(frame.head(119), folder / "data.parquet")
    assert check_stamp(folder).state == "stale"


def test_unreadable_stamp(kto):
    stamp_path(kto).write_text("{not json")
    assert check_stamp(kto).state == "unreadable"


def test_cli_writes_the_stamp_and_no_stamp_does_not(kto):
    done = run_cli("validate", kto, "--set", "min_pairs=100", "--set", "max_encoding_problem_share=0.01", "--no-stamp")
    assert done.returncode == 0 and not stamp_path(kto).exists()
    done = run_cli("validate", kto, "--set", "min_pairs=100", "--set", "max_encoding_problem_share=0.01")
    assert done.returncode == 0 and check_stamp(kto).ok


def test_a_build_folder_brings_its_judgments_and_its_spec_thresholds(tmp_path):
    from prefdata import schema

    folder = tmp_path / "built"
    frame = to_frame(pair_records(60, scores=True))
    write_table(frame, folder / "data.parquet")
    verdicts = [{"prompt_id": f"p{i}", "judge": "j", "a_id": "a", "b_id": "b", "order": order,
                 "winner": "a" if order == "ab" or i % 2 else "b", "parse_ok": True}
                for i in range(20) for order in ("ab", "ba")]
    schema.conform(pl.DataFrame(verdicts), schema.JUDGMENTS).write_parquet(folder / "judgments.parquet")
    spec = {"name": "x", "curate": [{"step": "filter", "min_margin": 2.0}], "validation": {"min_pairs": 50}}
    (folder / "manifest.json").write_text(json.dumps({"spec": spec}))
    report = validate(folder)
    assert report.settings["thresholds"]["min_pairs"] == 50 and report.settings["thresholds"]["min_margin"] == 2.0
    position = report.check("judge_position_consistency")
    assert not position.skipped and position.value == 0.5 and not position.passed
    assert report.check("judge_parse_failures").value == 0.0
    assert report.passed and check_stamp(folder).ok  # warnings only
