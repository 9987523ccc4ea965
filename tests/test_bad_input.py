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
    # hostile JSON (issue 12 §5): bounded, one line, the other rows kept with skip
    "deep_array": ((3, b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b', "chosen": "a", "rejected": "b"}'),
                   ":3: ", "nested more than 64 levels deep"),
    "deep_object": ((3, b'{"prompt": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b', "chosen": "a", "rejected": "b"}'),
                    ":3: field 'prompt'", "nested more than 64 levels deep"),
    "huge_integer": ((5, b'{"prompt": "q", "chosen": "a", "rejected": "b", "pair_id": ' + b"9" * 5000 + b"}"),
                     ":5: ", "an integer of 5000 digits"),
    "lone_surrogate": ((4, b'{"prompt": "q\\ud800", "chosen": "a", "rejected": "b"}'), ":4: field 'prompt'",
                       "lone surrogate"),
    "lone_surrogate_bytes": ((4, b'{"prompt": "q\xed\xa0\x80", "chosen": "a", "rejected": "b"}'), ":4: ",
                             "invalid UTF-8"),
    "duplicate_key": ((2, b'{"prompt": "q", "chosen": "a", "chosen": "b", "rejected": "c"}'), ":2: field 'chosen'",
                      "duplicate key"),
}
REASONS = {"malformed_line": "malformed_record", "wrong_type": "wrong_type", "missing_field": "missing_field",
           "empty_text": "empty_text", "non_utf8": "invalid_utf8", "nul_byte_raw": "nul_byte",
           "nul_byte_escaped": "nul_byte", "not_an_object": "malformed_record", "deep_array": "too_deep",
           "deep_object": "too_deep", "huge_integer": "number_too_long", "lone_surrogate": "lone_surrogate",
           "lone_surrogate_bytes": "invalid_utf8", "duplicate_key": "duplicate_key"}


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
    assert what in rejects["detail"][0] and rejects["reason"].to_list() == [REASONS[case]]
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
    assert "--on-error skip" not in done.stderr  # the whole file is unreadable: skipping records cannot help


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


# ---- hostile files (issue 12 §5): encodings, gzip, paths -------------------------------------------------------

def base_jsonl() -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in BASE)


def base_csv() -> str:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["prompt", "chosen", "rejected"])
    writer.writeheader()
    writer.writerows(BASE)
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("suffix", ["jsonl", "json", "csv"])
def test_byte_order_marks_are_read_in_every_text_format(tmp_path, suffix, encoding):
    """UTF-8 with a BOM, and UTF-16/32 with theirs, read as the same rows as plain UTF-8."""
    text = {"jsonl": base_jsonl(), "json": json.dumps(BASE, ensure_ascii=False), "csv": base_csv()}[suffix]
    bom = {"utf-16-le": "\ufeff", "utf-16-be": "\ufeff"}.get(encoding, "")  # the -le/-be codecs write none
    path = tmp_path / f"pairs.{suffix}"
    path.write_bytes((bom + text).encode(encoding))
    from prefdata.io import read_dataset

    got = read_dataset(path).frame
    assert got.height == len(BASE)
    assert got["chosen"].list.last().struct.field("content").to_list() == [r["chosen"] for r in BASE]


def test_utf16_without_a_byte_order_mark_is_named(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_bytes(base_jsonl().encode("utf-16-le"))
    done = run_cli("stats", path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "UTF-16 without a byte-order mark" in done.stderr


def complete_lines(data: bytes) -> int:
    """Independently of prefdata: how many whole lines zlib recovers from a cut gzip stream."""
    import zlib

    return zlib.decompressobj(wbits=31).decompress(data).count(b"\n")


def test_truncated_gz_keeps_the_rows_before_the_cut(tmp_path):
    import gzip

    from conftest import HH

    clean = gzip.compress(base_jsonl().encode() * 200)  # good rows only: the cut is the first problem
    path = tmp_path / "clean.jsonl.gz"
    path.write_bytes(clean[: len(clean) // 2])
    done = run_cli("convert", path, tmp_path / "out.jsonl")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    lines = complete_lines(path.read_bytes())
    assert f"{path}:{lines + 1}: the .gz file ends early (truncated)" in done.stderr

    whole = HH.read_bytes()  # real data, with its own bad rows: set aside too
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    lines = complete_lines(path.read_bytes())
    done = run_cli("convert", path, tmp_path / "out.jsonl", "--on-error", "skip")
    assert done.returncode == 0, done.stderr
    written = pl.read_ndjson(tmp_path / "out.jsonl").height
    rejects = pl.read_ndjson(tmp_path / "out.rejects.jsonl")
    assert written + rejects.height == lines + 1  # every whole line, plus the cut
    assert rejects.filter(pl.col("reason") == "truncated_file")["row_id"].to_list() == [str(lines + 1)]
    assert gzip.decompress(whole).count(b"\n") > lines  # it really was cut


def test_truncated_json_document_is_one_line(tmp_path):
    import gzip

    data = gzip.compress(json.dumps(BASE).encode())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(data[:-20])
    done = run_cli("stats", path, "--on-error", "skip")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "truncated" in done.stderr and "cannot be read in part" in done.stderr


def test_gzip_bomb_is_refused_quickly(tmp_path):
    import zlib

    from prefdata.io.files import GZIP_RATIO_FLOOR

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(1 << 20)
    path = tmp_path / "bomb.jsonl.gz"
    with path.open("wb") as f:
        for _ in range(2 * (GZIP_RATIO_FLOOR >> 20)):  # 512 MiB of zeros in a file of about 0.5 MB
            f.write(packer.compress(zeros))
        f.write(packer.flush())
    assert path.stat().st_size < 1 << 20
    done = run_cli("stats", path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "decompression bomb" in done.stderr


def test_a_named_pipe_is_refused_without_blocking(tmp_path):
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "prefdata", "convert", str(fifo), str(tmp_path / "o.jsonl")],
                          capture_output=True, text=True, timeout=60)  # before the fix: blocked forever
    assert done.returncode == 2 and "named pipe (FIFO), not a regular file" in done.stderr


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "a.jsonl").symlink_to(d / "b.jsonl") or (d / "b.jsonl").symlink_to(d / "a.jsonl"),
     "symbolic link loop"),
    (lambda d: (d / "a.jsonl").symlink_to(d / "gone.jsonl"), "broken symbolic link"),
    (lambda d: (d / "a.jsonl").mkdir(), "not a datasets folder"),
    (lambda d: (d / "a.jsonl").write_bytes(b""), "no records: the input is empty"),
    (lambda d: (d / "a.jsonl").write_bytes(b" \n\r\n\t\n"), "no records"),
])
def test_odd_paths_are_one_line(tmp_path, make, message):
    make(tmp_path)
    done = run_cli("stats", tmp_path / "a.jsonl")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message in done.stderr


def test_a_missing_file_in_a_folder_is_not_looked_up_on_the_hub(tmp_path):
    import subprocess
    import sys

    (tmp_path / "sub").mkdir()
    done = subprocess.run([sys.executable, "-m", "prefdata", "stats", "sub/pairs.jsonl"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=60)  # before: 25 s of Hub retries, then many lines
    assert done.returncode == 2 and done.stderr.strip() == "error: sub/pairs.jsonl: no such file or folder"


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_duplicate_columns_are_refused_like_duplicate_keys(tmp_path, suffix):
    path = tmp_path / f"dup.{suffix}"
    if suffix == "csv":
        import csv

        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["prompt", "chosen", "chosen", "rejected"])
            writer.writerows([r["prompt"], r["chosen"], "another answer", r["rejected"]] for r in BASE)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = [pa.array([r[k] for r in BASE]) for k in ("prompt", "chosen", "chosen", "rejected")]
        pq.write_table(pa.table(columns, names=["prompt", "chosen", "chosen", "rejected"]), path)
    done = run_cli("stats", path)
    assert done.returncode == 2 and "duplicate column 'chosen'" in done.stderr


def test_hostile_records_inside_a_json_document_or_a_csv_cell_are_set_aside_one_by_one(tmp_path):
    from prefdata.io import read_dataset

    deep = {"a": 1}
    for _ in range(70):
        deep = {"a": deep}
    rows = [dict(r) for r in BASE]
    rows[2]["prompt"] = [deep]
    rows[4]["chosen"] = "fine\ud800"  # written escaped by json.dumps: a lone surrogate once read
    document = tmp_path / "pairs.json"
    document.write_text(json.dumps(rows))
    table = tmp_path / "pairs.csv"
    table.write_text("prompt,chosen,rejected\n" + "".join(
        f'"{json.dumps(r["prompt"]).replace(chr(34), chr(34) * 2)}",ok,no\n' if i == 2 else f"p{i},ok,no\n"
        for i, r in enumerate(rows)))
    for path, where in ((document, "row"), (table, "row")):
        result = read_dataset(path, on_error="skip")
        assert result.frame.height + result.dropped.height == len(BASE)
        expected = {"3": "too_deep"} if path == table else {"3": "too_deep", "5": "lone_surrogate"}
        assert dict(zip(result.dropped["row_id"], result.dropped["reason"])) == expected
        assert f"{path}: {where} 3: field 'prompt'" in result.dropped["detail"][0]


def test_a_json_document_nested_past_pythons_own_limit_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    done = run_cli("stats", path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "nested more than 64 levels deep" in done.stderr


# ---- invisible answers: empty_text in the reader and in validate, by one rule ----------------------------------

INVISIBLE = ["\u3000", "\u2003", "\u00a0", "\u200b", "\ufeff", "\u2060", "\u200b\u200c\u200d \u3164", "\u2800\u00ad"]
VISIBLE = ["\u200bok", "e\u0301", "\u3000x\u3000"]


def test_an_answer_of_only_invisible_characters_is_empty_text(tmp_path):
    rows = [{**BASE[i % len(BASE)], "chosen": text} for i, text in enumerate(INVISIBLE + VISIBLE)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    done = run_cli("convert", path, tmp_path / "out.jsonl")
    assert done.returncode == 2 and f"{path}:1: field 'chosen[0].content': is empty" in done.stderr
    done = run_cli("convert", path, tmp_path / "out.jsonl", "--on-error", "skip")
    rejects = pl.read_ndjson(tmp_path / "out.rejects.jsonl")
    assert rejects["row_id"].to_list() == [str(i + 1) for i in range(len(INVISIBLE))]
    assert set(rejects["reason"]) == {"empty_text"}
    assert pl.read_ndjson(tmp_path / "out.jsonl").height == len(VISIBLE)


def test_validate_flags_invisible_answers_in_a_table_that_bypassed_the_reader():
    """A frame built in Python never met the reader: validate's own empty_text check must agree with it."""
    from prefdata import schema
    from prefdata.io import read_dataset
    from prefdata.validators.api import validate_frame

    texts = INVISIBLE + VISIBLE
    frame = read_dataset(DPO_DEMO).frame.head(len(texts)).with_columns(
        pl.Series("chosen", [[{"role": "assistant", "content": t}] for t in texts], dtype=schema.MESSAGES))
    check = validate_frame(frame, "pairwise", only=("empty_text",), examples=len(texts)).check("empty_text")
    assert check.value == len(INVISIBLE) and not check.passed
    assert [e["row"] for e in check.examples] == [i + 1 for i in range(len(INVISIBLE))]


def test_a_duplicate_key_in_a_json_document_sets_aside_only_its_record(tmp_path):
    from prefdata.io import read_dataset

    texts = [json.dumps(r) for r in BASE]
    texts[3] = texts[3][:-1] + ', "chosen": "a second chosen"}'
    path = tmp_path / "pairs.json"
    path.write_text("[" + ",\n".join(texts) + "]")
    result = read_dataset(path, on_error="skip")
    assert result.frame.height == len(BASE) - 1
    assert result.dropped.select("row_id", "reason").rows() == [("4", "duplicate_key")]
    assert "row 4: field 'chosen': duplicate key 'chosen'" in result.dropped["detail"][0]
