"""`prefdata review`: the decision log, the `human_review` stage, the stamp, and the server's API (a real
uvicorn server on loopback). The page in a browser: test_review_browser.py and test_build.py."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from prefdata.build import build
from prefdata.errors import InputError
from prefdata.review import apply, index, log
from prefdata.validators.stamp import check_stamp
from review_server import call, serving

ROOT = Path(__file__).resolve().parents[1]
HH_SPEC = ROOT / "examples" / "hh_curate" / "spec.yaml"
TOKEN = {"X-Review-Token": "test-token", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def hh_build(tmp_path_factory) -> Path:
    """The HH-RLHF curation example, built once (about 3 s: no model)."""
    out = tmp_path_factory.mktemp("hh") / "out"
    build(HH_SPEC, output=out, quiet=True)
    return out


@pytest.fixture
def hh(hh_build, tmp_path) -> Path:
    """A private copy of the built folder (with its stage outputs), for tests that add decisions."""
    copy = tmp_path / "hh"
    shutil.copytree(hh_build, copy)
    return copy


def _decide(folder: Path, pair_id: str, decision: str, **text) -> None:
    log.append(log.log_path(folder), log.Decision(pair_id=pair_id, decision=decision, **text))


# ---- the log -----------------------------------------------------------------------------------------------

def test_the_last_decision_stands_and_notes_gather(tmp_path):
    path = tmp_path / "review.jsonl"
    for pair, decision, extra in [("p1", "accept", {}), ("p1", "swap", {}), ("p2", "drop", {"reason": "off topic"}),
                                  ("p2", "clear", {}), ("p3", "note", {"note": "odd"}), ("p3", "note", {"note": "x"}),
                                  ("p4", "drop", {"reason": " rude ", "note": "and long"})]:
        log.append(path, log.Decision(pair_id=pair, decision=decision, **extra))
    lines = path.read_text().splitlines()
    assert len(lines) == 7 and all(json.loads(line)["time"] for line in lines)  # one line per decision
    current = {row["pair_id"]: row for row in log.current(log.read(path)).iter_rows(named=True)}
    assert current["p1"]["decision"] == "swap"
    assert current["p2"]["decision"] is None and current["p2"]["reason"] is None  # cleared
    assert current["p3"]["decision"] is None and current["p3"]["note"] == "odd\nx"
    assert current["p4"]["decision"] == "drop" and current["p4"]["reason"] == "rude"


@pytest.mark.parametrize("line, where, says", [
    ('{"pair_id": "p", "decision": "accept"', ":1", "malformed"),
    ('{"pair_id": "p", "decision": "delete"}', "field 'decision'", "accept"),
    ('{"pair_id": "p", "decision": "drop"}', ":1", "a drop needs a reason"),
    ('{"pair_id": "p", "decision": "note"}', ":1", "a note needs its text"),
    ('{"pair_id": "p", "decision": "drop", "reason": "a\\u0000b"}', "field 'reason'", "NUL"),
    ('{"pair_id": "p", "decision": "accept", "extra": 1}', "field 'extra'", "Extra inputs"),
    ('{"pair_id": "p", "decision": "drop", "reason": "\\ud800"}', ":1", "surrogate"),
    ('[' * 5000 + ']' * 5000, ":1", "nest"),
    ('{"pair_id": 1' + '0' * 5000 + ', "decision": "accept"}', ":1", "digits"),
    ('{"pair_id": "p", "decision": "accept", "pair_id": "q"}', ":1", "duplicate"),
])
def test_a_bad_log_line_is_an_error_naming_file_line_and_field(tmp_path, line, where, says):
    path = tmp_path / "review.jsonl"
    path.write_text('{"pair_id": "ok", "decision": "accept"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        log.read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2") and where.replace(":1", ":2") in message and says.lower() in message.lower()
    assert "\n" not in message and caught.value.whole_file  # no --on-error skip hint: a decision is never skipped


def test_a_log_that_is_not_text_is_one_error(tmp_path):
    path = tmp_path / "review.jsonl"
    path.write_bytes(b'{"pair_id": "\xff\xfe", "decision": "accept"}\n')
    with pytest.raises(InputError, match="not UTF-8"):
        log.read(path)


# ---- the stage ---------------------------------------------------------------------------------------------

def test_the_stage_keeps_swaps_and_drops_with_every_row_accounted(hh_build):
    frame = pl.read_parquet(hh_build / "data.parquet")
    ids = frame["pair_id"].to_list()
    decisions = pl.DataFrame({"pair_id": ids[:4] + ["not-here"], "decision": ["accept", "swap", "drop", None, "swap"],
                              "reason": [None, None, "off topic", None, None], "note": [None] * 5,
                              "time": ["t"] * 5})
    kept, dropped = apply.apply(frame, decisions)
    assert kept.height + dropped.height == frame.height and dropped.height == 1
    assert dropped.row(0, named=True)["reason"] == "human_review"
    assert dropped["detail"][0] == "dropped by a person: off topic" and dropped["row_id"][0] == ids[2]
    before, after = frame.row(1, named=True), kept.filter(pl.col("pair_id") == ids[1]).row(0, named=True)
    assert after["chosen"] == before["rejected"] and after["rejected"] == before["chosen"]
    assert kept.filter(pl.col("pair_id") == ids[0])["chosen"].to_list() == [frame.row(0, named=True)["chosen"]]
    assert kept["review"].to_list()[:3] == ["accept", "swap", None]
    assert apply.unswap(kept).drop("review").equals(frame.filter(pl.col("pair_id") != ids[2]))  # undone exactly


def test_a_swap_exchanges_scores_and_turns_the_margin():
    frame = pl.DataFrame({"pair_id": ["a"], "chosen_score": [8.0], "rejected_score": [3.0], "margin": [5.0]})
    decisions = pl.DataFrame({"pair_id": ["a"], "decision": ["swap"], "reason": [None], "note": [None],
                              "time": ["t"]}, schema=log.COLUMNS)
    kept = apply.apply(frame, decisions).kept.row(0, named=True)
    assert (kept["chosen_score"], kept["rejected_score"], kept["margin"]) == (3.0, 8.0, -5.0)


def test_judges_are_scored_against_the_persons_choice():
    """Two judges, two pairs a person decided: each verdict counts as right when it picked the person's answer."""
    def msgs(role, text):
        return [{"role": role, "content": text}]

    pairs = pl.DataFrame({"pair_id": ["x", "y"], "prompt_id": ["p", "q"],
                          "chosen": [msgs("assistant", "A1"), msgs("assistant", "B1")],
                          "rejected": [msgs("assistant", "A2"), msgs("assistant", "B2")]})
    candidates = pl.DataFrame({"prompt_id": ["p", "p", "q", "q"], "candidate_id": ["a1", "a2", "b1", "b2"],
                               "response": ["A1", "A2", "B1", "B2"]})
    judgments = pl.DataFrame({  # j1 picks the pair's chosen both times; j2 picks a2 (rejected) on p, ties on q
        "prompt_id": ["p", "p", "q", "q", "p", "q"], "judge": ["j1", "j1", "j1", "j1", "j2", "j2"],
        "a_id": ["a1", "a1", "b2", "b2", "a1", "b1"], "b_id": ["a2", "a2", "b1", "b1", "a2", "b2"],
        "winner": ["a", "a", "b", "b", "b", "tie"], "gold": [False] * 6})
    decisions = pl.DataFrame({"pair_id": ["x", "y", "y"], "decision": ["swap", "accept", "note"],
                              "reason": [None] * 3, "note": [None, None, "fine"], "time": ["t"] * 3})
    found = apply.summary(pairs, decisions, judgments, candidates)
    assert (found["checked"], found["accepted"], found["swapped"], found["notes"]) == (2, 1, 1, 1)
    assert found["panel"]["k"] == 1 and found["panel"]["n"] == 2  # the label stood on one of two
    assert (found["judges"]["j1"]["k"], found["judges"]["j1"]["n"]) == (2, 4)  # right on y only
    assert (found["judges"]["j2"]["k"], found["judges"]["j2"]["n"]) == (1, 2)  # a2 on x is right; a tie is not


# ---- the build, the card and the stamp ---------------------------------------------------------------------

def test_build_from_review_applies_decisions_and_reports_them(hh):
    ids = pl.read_parquet(hh / "data.parquet")["pair_id"].to_list()
    rows_before = pl.read_parquet(hh / "data.parquet").height
    _decide(hh, ids[0], "accept")
    _decide(hh, ids[1], "swap")
    _decide(hh, ids[2], "drop", reason="answers a different question")
    _decide(hh, ids[3], "note", note="long but fine")
    stale = check_stamp(hh)
    assert stale.state == "stale" and "review decisions (review.jsonl) are not applied" in stale.message

    result = build(HH_SPEC, output=hh, quiet=True, start="review")
    manifest = result.manifest
    assert manifest["stages"]["ran"] == ["review"] and "curate.0.dedupe" in manifest["stages"]["reused"]
    counts = manifest["counts"]["human_review"]
    assert counts == {"in": rows_before, "kept": rows_before - 1, "dropped": {"human_review": 1}}
    review = manifest["review"]
    assert [review[k] for k in ("checked", "accepted", "swapped", "dropped", "notes")] == [3, 1, 1, 1, 1]
    assert review["log"] == log.digest(hh / "review.jsonl")
    dropped = pl.read_parquet(hh / "dropped.parquet").filter(pl.col("stage") == "human_review")
    assert dropped["row_id"].to_list() == [ids[2]] and "answers a different question" in dropped["detail"][0]
    data = pl.read_parquet(hh / "data.parquet")
    assert data.filter(pl.col("review") == "swap")["pair_id"].to_list() == [ids[1]]
    card = (hh / "README.md").read_text()
    assert "## Human review" in card and "A person checked 3 pairs" in card
    assert "swapped chosen and rejected in 1" in card
    assert "The judges' label matched the person on 50% (1 of 2 pairs accepted or swapped" in card
    assert check_stamp(hh).state == "valid"
    _decide(hh, ids[5], "note", note="a note changes no data")
    assert check_stamp(hh).state == "valid"

    _decide(hh, ids[4], "drop", reason="duplicate in meaning")  # a new decision: the stamp is stale again
    assert check_stamp(hh).state == "stale"
    again = build(HH_SPEC, output=hh, quiet=True)  # no --from: the log's digest is part of the stage's key
    assert again.manifest["stages"]["ran"] == ["review"] and again.manifest["review"]["dropped"] == 2
    assert (hh / "review.jsonl").is_file() and check_stamp(hh).state == "valid"


def test_a_bad_line_in_the_folders_log_stops_the_build_before_it_runs(hh):
    (hh / "review.jsonl").write_text('{"pair_id": "x", "decision": "accept"}\n{"pair_id": "y", "decision": "maybe"}\n')
    marker = (hh / ".run" / "curate.0.dedupe.json").stat().st_mtime_ns
    done = subprocess.run([sys.executable, "-m", "prefdata", "build", str(HH_SPEC), "--output", str(hh), "--fresh"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {hh / 'review.jsonl'}:2: field 'decision': Input should be 'accept'")
    assert (hh / ".run" / "curate.0.dedupe.json").stat().st_mtime_ns == marker  # nothing ran


def test_the_page_shows_the_judges_pair_after_a_review_was_applied(hh):
    ids = pl.read_parquet(hh / "data.parquet")["pair_id"].to_list()
    original = pl.read_parquet(hh / "data.parquet")
    _decide(hh, ids[1], "swap")
    _decide(hh, ids[2], "drop", reason="bad")
    build(HH_SPEC, output=hh, quiet=True)
    data = index.load(hh)
    assert data.index.filter(pl.col("kind") == "pair").height == original.height  # the dropped pair is back
    shown = data.pairs.filter(pl.col("pair_id") == ids[1]).row(0, named=True)
    assert shown["chosen"] == original.row(1, named=True)["chosen"]  # swapped back for reading
    assert data.decisions[ids[1]]["decision"] == "swap" and data.decisions[ids[2]]["decision"] == "drop"


def test_row_flags_can_follow_in_the_background():
    source = ROOT.parent / "shared" / "data" / "llamafactory" / "dpo_en_demo.json"
    now = index.load(source)
    later = index.load(source, background=True)
    for _ in range(600):
        if later.flagging is None:
            break
        time.sleep(0.05)
    assert later.flagging is None and index.meta(later)["flagging"] is None
    assert later.index.equals(now.index) and index.meta(later)["flags"] == index.meta(now)["flags"] != []


def test_a_spec_step_applies_a_log_to_any_file(tmp_path):
    source = ROOT.parent / "shared" / "data" / "llamafactory" / "dpo_en_demo.json"
    pairs = index.load(source)
    first = pairs.index["pair_id"][0]
    review_log = tmp_path / "decisions.jsonl"
    log.append(review_log, log.Decision(pair_id=first, decision="drop", reason="not English"))
    spec = {"name": "demo", "sources": [{"path": str(source)}], "generate": None,
            "curate": [{"step": "human_review", "file": str(review_log)}], "output": {"dir": str(tmp_path / "out")}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = build(tmp_path / "spec.yaml", quiet=True)
    assert result.manifest["counts"]["human_review"]["dropped"] == {"human_review": 1}
    spec["curate"][0]["file"] = str(tmp_path / "missing.jsonl")
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(Exception, match=r"spec\.yaml:\d+: curate\.0\.file: .*missing\.jsonl: no such file"):
        build(tmp_path / "spec.yaml", quiet=True)


# ---- the server --------------------------------------------------------------------------------------------

def test_the_api_pages_filters_and_records_decisions(hh):
    with serving(hh) as (base, data):
        status, meta, headers = call(base, "/api/meta")
        assert status == 200 and meta["pairs"] == data.pairs.height and meta["splits"] == ["test", "train"]
        assert "script-src 'self'" in headers["content-security-policy"] and headers["x-frame-options"] == "DENY"
        _, page, _ = call(base, "/api/rows?offset=40&limit=20")
        assert page["total"] == data.pairs.height and [r["row"] for r in page["rows"]] == list(range(40, 60))
        _, tests, _ = call(base, "/api/rows?split=test&limit=500")
        assert tests["total"] == data.pairs.filter(pl.col("split") == "test").height
        assert {r["split"] for r in tests["rows"]} == {"test"}
        _, ratio, _ = call(base, "/api/rows?show=dropped&reason=length_ratio")
        assert ratio["total"] == meta["reasons"]["length_ratio"] and ratio["rows"][0]["kind"] == "dropped"
        _, longer, _ = call(base, "/api/rows?side=rejected&limit=5")
        assert all(r["side"] == "rejected" for r in longer["rows"])
        first = page["rows"][0]
        _, view, _ = call(base, f"/api/row/{first['row']}")
        assert view["pair"]["prompt"][-1]["role"] == "user" and view["pair_id"] == first["pair_id"]

        status, answer, _ = call(base, "/api/decide", {"pair_id": first["pair_id"], "decision": "swap"}, TOKEN)
        assert status == 200 and answer["decision"]["decision"] == "swap" and answer["meta"]["decided"]["swap"] == 1
        _, swapped, _ = call(base, "/api/rows?decision=swap")
        assert [r["pair_id"] for r in swapped["rows"]] == [first["pair_id"]]
    assert log.current(log.read(hh / "review.jsonl"))["decision"].to_list() == ["swap"]


def test_the_api_refuses_what_it_should(hh):
    with serving(hh) as (base, data):
        pair = data.pairs["pair_id"][0]
        assert call(base, "/api/decide", {"pair_id": pair, "decision": "accept"})[0] == 403  # no token
        wrong = {**TOKEN, "X-Review-Token": "guess"}
        assert call(base, "/api/decide", {"pair_id": pair, "decision": "accept"}, wrong)[0] == 403
        assert call(base, "/api/meta", headers={"Host": "attacker.example"})[0] == 400  # DNS rebinding
        status, body, _ = call(base, "/api/decide", {"pair_id": pair, "decision": "drop"}, TOKEN)
        assert status == 400 and "a drop needs a reason" in body["error"]
        status, body, _ = call(base, "/api/decide", {"pair_id": "nope", "decision": "accept"}, TOKEN)
        assert status == 404
        dropped_id = data.index.filter(pl.col("kind") == "dropped")["pair_id"][0]  # a row the reader set aside
        assert call(base, "/api/decide", {"pair_id": dropped_id, "decision": "accept"}, TOKEN)[0] == 404
        assert call(base, "/api/decide", b"x" * 20_000, TOKEN)[0] == 413
        assert call(base, "/api/decide", b'{"pair_id": "\\ud800", "decision": "accept"}', TOKEN)[0] == 400
        assert call(base, "/api/decide", b"[" * 10_000, TOKEN)[0] == 400
        assert call(base, "/api/row/999999")[0] == 404 and call(base, "/api/row/-1")[0] == 404
        assert call(base, "/api/rows?max_margin=NaN&offset=abc")[0] == 200  # ignored, not a crash
        assert call(base, "/static/../server.py")[0] == 404
    assert not (hh / "review.jsonl").exists()  # nothing refused reached the log


def test_the_page_loads_nothing_from_outside():
    static = ROOT / "prefdata" / "review" / "static"
    for path in static.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
        assert "innerHTML" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, path.name
    assert "<script>" not in (static / "index.html").read_text()  # no inline script: the CSP forbids it


def test_the_command_binds_loopback_unless_told(hh):
    process = subprocess.Popen([sys.executable, "-m", "prefdata", "review", str(hh), "--port", "0"],
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr.readline().startswith(f"prefdata review: reading {hh}")
        line = process.stderr.readline()
        assert line.startswith("prefdata review: http://127.0.0.1:") and "review.jsonl" in line
        port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert call(f"http://127.0.0.1:{port}", "/api/meta")[1]["pairs"] > 2000
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
    bad = subprocess.run([sys.executable, "-m", "prefdata", "review", str(hh / "nope")], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.strip() == f"error: {hh / 'nope'}: no such file or folder"


def test_only_an_explicit_host_leaves_loopback(hh):
    from prefdata.commands.review import _loopback
    from prefdata.review.server import allowed_hosts

    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost") and not _loopback("0.0.0.0")
    assert allowed_hosts("127.0.0.1") == ["127.0.0.1", "::1", "localhost"] and allowed_hosts("0.0.0.0") == ["*"]
    process = subprocess.Popen([sys.executable, "-m", "prefdata", "review", str(hh), "--port", "0", "--host",
                                "0.0.0.0"], stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr.readline().startswith("warning: serving on 0.0.0.0: anyone who can reach")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)


@pytest.mark.slow
def test_the_page_opens_every_hostile_input_or_says_why(tmp_path):
    """The hostile-input corpus (tests/hostile/inputs.py): each file opens in the page's data (list and views) or
    is one PrefdataError; never another exception. Files over 30 MB are left to test_hostile_inputs."""
    from hostile.inputs import build as corpus

    from prefdata.errors import PrefdataError

    _, files = corpus(tmp_path)
    opened = refused = 0
    for path in sorted({Path(f) for f in files}):
        if not path.is_file() or path.stat().st_size > 30_000_000:
            continue
        try:
            data = index.load(path)
        except PrefdataError as error:
            assert "\n" not in str(error).strip(), path.name
            refused += 1
            continue
        total, rows = index.query(data, {"show": "all"}, 0, 50)
        assert total == data.index.height and all(index.view(data, r["row"]) is not None for r in rows)
        opened += 1
    assert opened >= 30 and refused >= 15, (opened, refused)


def test_huge_texts_and_deep_records_reach_the_page_bounded(tmp_path):
    """A 300,000-character answer is sent by its head and says how much is left out; a line 100,000 brackets deep,
    which the reader set aside, shows as its (clipped) text, never a RecursionError."""
    path = tmp_path / "odd.jsonl"
    huge = {"prompt": "Tell me a long story.", "chosen": "Once upon a time " * 18_000, "rejected": "No."}
    path.write_text(json.dumps(huge) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    data = index.load(path)
    pair = index.view(data, 0)["pair"]["chosen"][0]["content"]
    assert len(pair) < index.CLIP + 100 and pair.endswith("more characters not shown)")
    dropped = index.view(data, 1)
    assert dropped["kind"] == "dropped" and "pair" not in dropped and len(dropped["record"]) < index.CLIP + 100
