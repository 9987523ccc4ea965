"""The review page in a real browser (headless Chromium driven by Playwright): hostile answers run nothing, the
keyboard walks and decides, and the shared HH-RLHF set (2,246 pairs) pages through. The quickstart walk, with
the rebuild that applies the decisions, is in test_build.py (it needs the built quickstart)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from prefdata.build import build
from prefdata.review import log
from review_server import browser_page, choose, open_review, press, serving

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["<script>window.__pwned = 1</script>", '<img src=x onerror="window.__pwned = 2">',
           '"><svg onload="window.__pwned = 3">', "</div><iframe src=\"javascript:window.__pwned=4\">"]


def _hostile_file(tmp_path: Path) -> Path:
    rows = [{"prompt": f"Question {i} {HOSTILE[i]}", "chosen": f"Answer {HOSTILE[i]}",
             "rejected": f"No. {HOSTILE[-1 - i]}"} for i in range(len(HOSTILE))]
    rows.append({"prompt": HOSTILE[0], "chosen": " ", "rejected": HOSTILE[1]})  # set aside by the reader: empty
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_hostile_answers_are_shown_as_text_and_run_nothing(tmp_path):
    source = _hostile_file(tmp_path)
    with serving(source) as (base, _), browser_page() as (page, errors):
        open_review(page, base)
        for i in range(len(HOSTILE)):
            text = page.inner_text("#pair")
            assert HOSTILE[i] in text  # the markup is on screen, as characters
            assert page.evaluate("window.__pwned") is None
            assert page.locator("#pair img, #pair svg, #pair iframe, #pair script").count() == 0
            press(page, "j")
        choose(page, "#f-show", "dropped")
        assert "dropped row" in page.inner_text("#status")
        assert HOSTILE[0] in page.inner_text("#pair") and page.evaluate("window.__pwned") is None
        assert not [e for e in errors if "Content Security Policy" not in e], errors


def test_the_keyboard_walks_decides_and_takes_back(tmp_path):
    source = ROOT.parent / "shared" / "data" / "llamafactory" / "dpo_en_demo.json"
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    with serving(copy) as (base, data), browser_page() as (page, errors):
        open_review(page, base)
        ids = data.pairs["pair_id"].to_list()
        assert page.inner_text("#status").startswith(f"1 of {len(ids)}")
        press(page, "j")
        press(page, "j")
        press(page, "k")
        assert page.inner_text("#status").startswith(f"2 of {len(ids)}")
        press(page, "s")  # swap pair 2; the page moves on to pair 3
        assert page.inner_text("#status").startswith(f"3 of {len(ids)}")
        press(page, "d")
        page.keyboard.type("the answer is in Chinese")
        press(page, "Enter")  # drop pair 3 with a reason; on to pair 4
        press(page, "n")
        page.keyboard.type("check the arithmetic")
        press(page, "Enter")  # a note does not move on
        press(page, "a")
        press(page, "k")
        press(page, "u")  # take back the accept of pair 4
        assert "accepted" not in page.inner_text("#status")
        assert "1 swapped, 1 dropped" in page.inner_text("#counts")
        assert not errors, errors
    decisions = [json.loads(line) for line in (tmp_path / (source.name + ".review.jsonl")).read_text().splitlines()]
    assert [(d["pair_id"], d["decision"]) for d in decisions] == [
        (ids[1], "swap"), (ids[2], "drop"), (ids[3], "note"), (ids[3], "accept"), (ids[3], "clear")]
    assert decisions[1]["reason"] == "the answer is in Chinese" and decisions[2]["note"] == "check the arithmetic"


@pytest.mark.slow
def test_the_hh_set_pages_filters_and_stays_responsive(tmp_path):
    out = tmp_path / "hh"
    build(ROOT / "examples" / "hh_curate" / "spec.yaml", output=out, quiet=True)
    pairs = pl.read_parquet(out / "data.parquet")
    with serving(out) as (base, _), browser_page() as (page, errors):
        open_review(page, base)
        assert page.inner_text("#page-info") == f"1–50 of {pairs.height}"
        for _ in range(55):  # across the first page boundary: the list pages itself
            press(page, "j")
        assert page.inner_text("#status").startswith(f"56 of {pairs.height}")
        assert page.inner_text("#page-info") == f"51–100 of {pairs.height}"
        assert page.locator("#rows li").count() == 50  # never the whole set in the page
        choose(page, "#f-split", "test")
        tests = pairs.filter(pl.col("split") == "test").height
        assert page.inner_text("#page-info").endswith(f"of {tests}")
        choose(page, "#f-show", "dropped")
        choose(page, "#f-split", "")
        choose(page, "#f-reason", "length_ratio")
        assert "dropped row" in page.inner_text("#status")
        assert "length_ratio" in page.inner_text("#pair")
        assert not errors, errors
    assert not log.log_path(out).exists()  # reading decides nothing
