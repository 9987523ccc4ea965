"""The Great Expectations suite: the same verdicts as the catalogue, and Data Docs beside the data."""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import DPO_DEMO
from prefdata.validators.api import validate
from prefdata.validators.stamp import check_stamp, docs_path
from validators_planted import pair_records, to_frame

pytestmark = pytest.mark.slow  # importing great_expectations alone takes about 5 s


def verdicts(report) -> dict[str, bool]:
    """Per check: were all of its GX expectations met?"""
    met: dict[str, bool] = defaultdict(lambda: True)
    for result in report.gx["results"]:
        met[result["check"].split(".")[0]] &= result["success"]
    return dict(met)


def test_gx_agrees_with_the_catalogue_on_real_pairs(tmp_path, embedded_model):
    data = tmp_path / "dpo.json"
    shutil.copy(DPO_DEMO, data)
    report = validate(data, gx=True, tokenizer=embedded_model, max_length=2048)
    by_check = {c.name: c for c in report.checks}
    gx = verdicts(report)
    assert set(gx) >= {"schema", "empty_text", "chosen_differs", "exact_duplicates", "near_duplicates",
                       "encoding", "size", "length_bias", "prompt_distinct_ngrams", "token_lengths", "truncation"}
    for name, met in gx.items():
        assert met == by_check[name].passed, name
    assert {"exact_duplicates", "size", "encoding"} <= {n for n, met in gx.items() if not met}
    assert report.gx["success"] == report.passed
    index = docs_path(data) / "index.html"
    assert report.gx["index"] == str(index) and index.is_file()
    pages = list((docs_path(data) / "validations").rglob("*.html"))
    assert len(pages) == 2
    rows_page = next(p for p in pages if "rows" in p.name).read_text()
    assert "exact_duplicates (warning" in rows_page and "not met" in rows_page
    assert report.passed  # the failed checks above are warnings
    assert check_stamp(data).state == "valid"  # the docs folder written beside the data is not part of it


def test_gx_fails_an_error_check_on_planted_data(tmp_path, monkeypatch):
    from prefdata.io import write_table

    records = pair_records(150)
    records[3]["rejected"] = records[3]["chosen"]
    write_table(to_frame(records), tmp_path / "set" / "data.parquet")
    monkeypatch.chdir(tmp_path)
    data = Path("set")  # a relative path, as people type it
    report = validate(data, gx=True, thresholds={"min_pairs": 100})
    assert not report.passed and not report.gx["success"]
    assert report.gx["failed"] == ["chosen_differs"]
    assert (data / "validation_docs" / "index.html").is_file()
    assert check_stamp(data).state == "failed"
    assert json.loads((data / "validation.json").read_text())["gx"]["failed"] == ["chosen_differs"]
