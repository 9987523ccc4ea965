"""Bad input: one line naming file, line (or row) and field; exit code 2; nothing lost with skip."""

import json

import polars as pl
import pytest

from conftest import DPO_DEMO, json_rows, run_cli

BASE = [{"prompt": r["conversations"][0]["value"], "chosen": r["chosen"]["value"],
         "rejected": r["rejected"]["value"]} for r in json_rows(DPO_DEMO)[:6]]


def jsonl_with(tmp_path, line_no: int, bad: bytes) -> str:
    """Real rows as JSON Lines, with line `line_no` (1-based) replaced by `bad`."""
    lines = [json.dumps(r).encode() for r in BASE]
    lines[line_no - 1] = bad
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


def with_field(line_no: int, **change) -> tuple[int, bytes]:
    row = {**BASE[line_no - 1], **change}
    return line_no, json.dumps({k: v for k, v in row.items() if v is not ...}).encode()


CASES = {
    "malformed_line": ((3, b'{"prompt": "hi", "chosen": "x"'), ":3: ", "malformed JSON"),
    "wrong_type": (with_field(2, chosen=42), ":2: field 'chosen'", "expected text"),
    "missing_field": (with_field(4, rejected=...), ":4: field 'rejected'", "missing"),
    "empty_text": (with_field(5, chosen="   "), ":5: field 'chosen[0].content'", "empty"),
    "non_utf8": ((2, b'{"prompt": "caf\xe9", "chosen": "a", "rejected": "b"}'), ":2: ", "invalid UTF-8"),
    "nul_byte_raw": ((3, b'{"prompt": "a\x00b", "chosen": "a", "rejected": "b"}'), ":3: ", "NUL byte"),
    "nul_byte_escaped": (with_field(6, prompt="a\u0000b"), ":6: field 'prompt[0].content'", "NUL byte"),
    "not_an_object": ((2, b'[1, 2, 3]'), ":2: ", "expected a JSON object"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_record_gives_one_line_and_exit_2(tmp_path, case):
    (line_no, bad), where, what = CASES[case]
    path = jsonl_with(tmp_path, line_no, bad)
    done = run_cli("convert", path, tmp_path / "out.jsonl")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert path + where in lines[0] and what in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("case", CASES)
def test_skip_sets_bad_records_aside_and_loses_nothing(tmp_path, case):
    (line_no, bad), _, what = CASES[case]
    path = jsonl_with(tmp_path, line_no, bad)
    out = tmp_path / "out.jsonl"
    done = run_cli("convert", path, out, "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    written = pl.read_ndjson(out)
    rejects = pl.read_ndjson(tmp_path / "out.rejects.jsonl")
    assert written.height + rejects.height == len(BASE)
    assert rejects["row_id"].to_list() == [str(line_no)]
    assert what in rejects["detail"][0]
    assert rejects["record"][0]  # the bad record itself is kept


def test_debug_shows_the_traceback(tmp_path):
    path = jsonl_with(tmp_path, 2, b"{oops")
    done = run_cli("--debug", "convert", path, tmp_path / "out.jsonl")
    assert done.returncode != 0 and "Traceback" in done.stderr


@pytest.mark.parametrize("name, content, message", [
    ("data.parquet", b"\x89PNG\r\n\x1a\n" + bytes(64), "not a Parquet file"),
    ("data.parquet", b"PAR1 this is not parquet at all", "unreadable Parquet file"),
    ("data.json", b"\x89PNG\r\n\x1a\n\x00\x00", "NUL byte"),
    ("data.jsonl", "\ufeffnot json at all\n".encode(), "malformed JSON"),
    ("data.csv", b"prompt,chosen\n\xff\xfe,x\n", "invalid UTF-8"),
    ("data.txt", b"hello", "unknown file type"),
    ("data.json", b'{"a": 1', "not valid JSON"),
])
def test_file_that_is_not_what_it_claims(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    done = run_cli("stats", path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and str(path) in done.stderr and message in done.stderr


def test_unknown_columns_name_the_columns(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"question": "q", "answer": "a"}\n')
    done = run_cli("stats", path)
    assert done.returncode == 2 and "question" in done.stderr and "--format" in done.stderr


def test_missing_file(tmp_path):
    done = run_cli("stats", tmp_path / "nope.jsonl")
    assert done.returncode == 2 and "no such file" in done.stderr


def test_wrong_forced_format_is_an_error_per_record(tmp_path):
    done = run_cli("stats", DPO_DEMO, "--format", "trl-unpaired")
    assert done.returncode == 2 and "row 1" in done.stderr


# ---- numbers: a score is a finite number (issue 12 §7) ------------------------------------------------------

SCORED = [{**r, "score_chosen": 8.0, "score_rejected": 3.5} for r in BASE]  # ultrafeedback-binarized


@pytest.mark.parametrize("literal, reason", [
    (b"NaN", "non_finite_number"), (b"Infinity", "non_finite_number"), (b"-Infinity", "non_finite_number"),
    (b"1e400", "non_finite_number"), (b'"NaN"', "non_finite_number"), (b'"inf"', "non_finite_number"),
    (b"true", "wrong_type"),
])
def test_a_non_finite_or_boolean_score_is_bad_input(tmp_path, literal, reason):
    lines = [json.dumps(r).encode() for r in SCORED]
    lines[2] = lines[2].replace(b'"score_chosen": 8.0', b'"score_chosen": ' + literal)
    path = tmp_path / "scored.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    done = run_cli("convert", path, tmp_path / "out.jsonl")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"{path}:3: field 'score_chosen'" in done.stderr
    done = run_cli("convert", path, tmp_path / "out.jsonl", "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    rejects = pl.read_ndjson(tmp_path / "out.rejects.jsonl")
    assert pl.read_ndjson(tmp_path / "out.jsonl").height == len(SCORED) - 1
    assert rejects["row_id"].to_list() == ["3"] and rejects["reason"].to_list() == [reason]


def test_a_non_finite_ultrafeedback_rating_names_its_completion(tmp_path):
    demo = json_rows(DPO_DEMO)[0]
    row = {"instruction": demo["conversations"][0]["value"], "completions": [
        {"response": demo["chosen"]["value"], "overall_score": 9},
        {"response": demo["rejected"]["value"], "overall_score": 2},
    ]}
    path = tmp_path / "uf.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row).replace('"overall_score": 2', '"overall_score": NaN')
                    + "\n")
    done = run_cli("stats", path)
    assert done.returncode == 2 and f"{path}:2: field 'completions[1].overall_score'" in done.stderr


@pytest.mark.parametrize("argv", [
    ["filter", DPO_DEMO, "{tmp}/f.jsonl", "--min-margin", "nan"],
    ["filter", DPO_DEMO, "{tmp}/f.jsonl", "--max-length-ratio", "inf"],
    ["validate", DPO_DEMO, "--no-stamp", "--set", "min_margin=nan"],
])
def test_a_non_finite_bound_is_refused(tmp_path, argv):
    done = run_cli(*[str(a).format(tmp=tmp_path) for a in argv])
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "finite" in done.stderr


@pytest.mark.parametrize("step", ["dedupe", "near_dedupe"])
def test_highest_margin_never_keeps_a_nan_margin(step):
    """Frames built in Python (not read from a file) can still carry NaN; Polars sorts NaN above every number."""
    from prefdata.curate import run_step
    from prefdata.curate.config import DedupeConfig, NearDedupeConfig
    from prefdata.io import read_dataset

    pair = read_dataset(DPO_DEMO).frame.head(1)
    frame = pl.concat([pair, pair, pair]).with_columns(
        pl.Series("margin", [float("nan"), 2.0, None]), pl.Series("pair_id", ["nan", "two", "none"]))
    config = (DedupeConfig(keep="highest_margin") if step == "dedupe"
              else NearDedupeConfig(keep="highest_margin"))
    kept = run_step(frame, config).kept
    assert kept["pair_id"].to_list() == ["two"]
