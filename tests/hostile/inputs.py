"""The hostile-input corpus (issue 12): writes hostile input files into a folder and the `Case`s that run
`prefdata` on them, each with what a correct program does (`error`: one line, exit 2; `ok`: the good rows
kept and the bad ones set aside, checked by counting what was written).

    python tests/hostile/inputs.py      # every case's outcome, then the counts

The good rows come from the shared LLaMA-Factory demo; the hostile parts are made here.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import socket
import sys
import zlib
from pathlib import Path
from typing import Callable

if __package__ in (None, ""):  # run as a script: import the harness beside this file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hostile.harness import Case, Outcome, report, run_case, summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DPO_DEMO = ROOT.parent / "shared" / "data" / "llamafactory" / "dpo_en_demo.json"
MB = 1 << 20


def good_rows(n: int = 8) -> list[dict]:
    rows = json.loads(DPO_DEMO.read_text(encoding="utf-8"))[:n]
    return [{"prompt": r["conversations"][-1]["value"], "chosen": r["chosen"]["value"],
             "rejected": r["rejected"]["value"]} for r in rows]


GOOD = good_rows()
N = len(GOOD)
GOOD_LINES = [json.dumps(r).encode() for r in GOOD]


def strict_json(text: str):
    def refuse(constant: str):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def lines_in(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def wrote(out: Path, written: int, rejected: int) -> Callable:
    """Check: `written` rows in OUT and `rejected` in OUT.rejects.jsonl (input rows = written + rejected)."""
    rejects = out.with_name(out.name.removesuffix(".jsonl") + ".rejects.jsonl")

    def check(done) -> str | None:
        got = (lines_in(out), lines_in(rejects))
        if got != (written, rejected):
            return f"wrote {got[0]} rows and set aside {got[1]}, expected {written} and {rejected}"
        return None

    return check


def exported(prompts: int, unreadable: int) -> Callable:
    """Check `export --sft --json`: every readable prompt's best answer, the bad records counted."""

    def check(done) -> str | None:
        found = strict_json(done.stdout)
        if (found["exported"], found["unreadable_records"]) != (prompts, unreadable):
            return f"exported {found['exported']}, unreadable {found['unreadable_records']}; expected {prompts}, " \
                   f"{unreadable}"
        return None

    return check


def summary_says(rows_out: int, **dropped: int) -> Callable:
    """Check a curation command's strict `--json` summary: rows out, reasons, rows in = out + dropped."""

    def check(done) -> str | None:
        found = strict_json(done.stdout)
        total = sum(found["dropped"].values())
        if found["rows_in"] != found["rows_out"] + total:
            return f"rows_in {found['rows_in']} != rows_out {found['rows_out']} + dropped {total}"
        if found["rows_out"] != rows_out or any(found["dropped"].get(k) != v for k, v in dropped.items()):
            return f"rows_out {found['rows_out']}, dropped {found['dropped']}; expected {rows_out}, {dropped}"
        return None

    return check


def figures(**expected) -> Callable:
    """Check `stats --json` (strict) figures."""

    def check(done) -> str | None:
        found = strict_json(done.stdout)
        wrong = {k: found.get(k) for k, v in expected.items() if found.get(k) != v}
        return f"stats {wrong}, expected {expected}" if wrong else None

    return check


def validation(**checks: int) -> Callable:
    """Check `validate --json` (strict): each named check's value."""

    def check(done) -> str | None:
        found = {c["name"]: c for c in strict_json(done.stdout)["checks"]}
        wrong = {k: found[k]["value"] for k, v in checks.items() if found[k]["value"] != v}
        return f"checks {wrong}, expected {checks}" if wrong else None

    return check


class Corpus:
    """Writes files into `folder` and collects the cases that read them."""

    def __init__(self, folder: Path):
        self.folder, self.out = folder, folder / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.cases: list[Case] = []
        self.files: list[Path] = []

    def file(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        self.files.append(path)
        return path

    def lines(self, name: str, bad: bytes | list[bytes], at: int = 2) -> Path:
        """The good rows as JSON Lines with the bad line(s) inserted at index `at`."""
        bad = bad if isinstance(bad, list) else [bad]
        return self.file(name, b"\n".join(GOOD_LINES[:at] + bad + GOOD_LINES[at:]) + b"\n")

    def error(self, name: str, *argv, timeout: float = 120) -> None:
        self.cases.append(Case(name, [str(a) for a in argv], "error", timeout=timeout))

    def ok(self, name: str, *argv, check: Callable | None = None, codes: tuple[int, ...] = (0,),
           timeout: float = 120) -> None:
        self.cases.append(Case(name, [str(a) for a in argv], "ok", check=check, ok_codes=codes, timeout=timeout))

    def bad_record(self, name: str, path: Path, bad: int = 1, command: str = "convert") -> None:
        """A file of N good rows and `bad` bad records: one line and exit 2 by default; with skip every good
        row kept and each bad one set aside (convert: counted in its files; curation commands and stats:
        in their strict --json figures)."""
        out = self.out / f"{name}.jsonl"
        argv = {"convert": [out], "dedupe": [out, "--json"], "filter": [out, "--json"], "pii": [out, "--json"],
                "export": [out, "--sft", "--json"],
                "split": [self.out / name, "--json"], "length-bias": ["--json"], "stats": ["--json"]}[command]
        check = {"convert": wrote(out, N, bad), "stats": figures(rows=N, rows_in=N + bad),
                 "export": exported(len({json.dumps(r["prompt"]) for r in GOOD}), bad)}.get(command, summary_says(N))
        self.error(f"{name}/raise", command, path, *argv)
        self.ok(f"{name}/skip", command, path, *argv, "--on-error", "skip", check=check)


def record(**change) -> bytes:
    return json.dumps({**GOOD[0], **change}).encode()


def with_raw(key: str, raw: bytes) -> bytes:
    """A good record whose `key` holds `raw`, written as given (bytes JSON could not spell)."""
    rest = {k: v for k, v in GOOD[0].items() if k != key}
    return json.dumps(rest).encode()[:-1] + b', "' + key.encode() + b'": ' + raw + b"}"


def nested(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a": ' * depth + b"1" + b"}" * depth


def json_records(c: Corpus) -> None:
    """One bad record among good ones, in JSON Lines; every command that reads pairs meets some of them."""
    c.bad_record("deep_array_100k", c.lines("deep_array.jsonl", with_raw("prompt", nested(100_000, "array"))))
    c.bad_record("deep_object_70", c.lines("deep_object.jsonl", with_raw("prompt", nested(70, "object"))),
                 command="dedupe")
    c.bad_record("deep_array_500", c.lines("deep_array_500.jsonl", with_raw("chosen", nested(500, "array"))),
                 command="filter")
    c.bad_record("huge_int", c.lines("huge_int.jsonl", with_raw("judges", b"7" * 5000)), command="split")
    scores = b', "score_rejected": 1.0'
    c.bad_record("huge_int_score", c.lines("huge_int_score.jsonl", with_raw("score_chosen", b"9" * 5000 + scores)),
                 command="stats")
    for name, literal, command in [("float_1e400", b"1e400", "convert"), ("nan_literal", b"NaN", "filter"),
                                   ("infinity_literal", b"-Infinity", "length-bias"),
                                   ("nan_string", b'"NaN"', "convert"), ("inf_string", b'"inf"', "dedupe"),
                                   ("bool_score", b"true", "convert")]:
        c.bad_record(name, c.lines(f"{name}.jsonl", with_raw("score_chosen", literal + scores)), command=command)
    c.bad_record("lone_surrogate_escaped", c.lines("surrogate_escaped.jsonl", with_raw("chosen", b'"ok\\udc00"')),
                 command="length-bias")
    c.bad_record("lone_surrogate_bytes", c.lines("surrogate_bytes.jsonl", with_raw("chosen", b'"ok\xed\xa0\x80"')))
    # the newer pair commands meet the same records: best-of-n export, PII
    c.bad_record("deep_array_export", c.lines("deep_array_export.jsonl", with_raw("prompt", nested(100_000, "array"))),
                 command="export")
    c.bad_record("nan_score_export", c.lines("nan_export.jsonl", with_raw("score_chosen", b"NaN" + scores)),
                 command="export")
    surrogate_mail = with_raw("chosen", b'"mail me at a@b.com \\udc00"')
    c.bad_record("lone_surrogate_pii", c.lines("surrogate_pii.jsonl", surrogate_mail), command="pii")
    c.bad_record("deep_object_pii", c.lines("deep_object_pii.jsonl", with_raw("prompt", nested(70, "object"))),
                 command="pii")
    c.bad_record("invalid_utf8", c.lines("invalid_utf8.jsonl", with_raw("chosen", b'"\xff\xfe"')))
    c.bad_record("nul_byte_raw", c.lines("nul_raw.jsonl", with_raw("chosen", b'"o\x00k"')))
    c.bad_record("nul_byte_escaped", c.lines("nul_escaped.jsonl", record(chosen="o\x00k")))
    c.bad_record("duplicate_keys", c.lines("duplicate_keys.jsonl", record()[:-1] + b', "chosen": "another"}'),
                 command="filter")
    system_last = [{"role": "user", "content": "hi"}, {"role": "system", "content": "be terse"}]
    c.bad_record("system_last_turn", c.lines("system_last.jsonl", record(prompt=system_last)))
    c.bad_record("missing_key", c.lines("missing_key.jsonl", json.dumps({"prompt": "q", "chosen": "a"}).encode()))
    c.bad_record("null_content", c.lines("null_content.jsonl", record(chosen=[{"role": "assistant", "content": None}])))
    c.bad_record("content_dict", c.lines("content_dict.jsonl",
                                         record(chosen=[{"role": "assistant", "content": {"text": "hi"}}])))
    c.bad_record("million_element_list", c.lines("million_list.jsonl", record(chosen=list(range(1_000_000)))))
    c.bad_record("not_an_object", c.lines("not_object.jsonl", b"[1, 2, 3]"))
    c.bad_record("malformed_line", c.lines("malformed.jsonl", record()[:-7]))
    zero_width = ["\u200b", "\u3000", "\u2003", "\u00a0", "\ufeff", "\u2060\u200c"]
    path = c.lines("zero_width.jsonl", [record(chosen=t) for t in zero_width])
    out = c.out / "zero_width.jsonl"
    c.error("zero_width_answers/raise", "convert", path, out)
    c.ok("zero_width_answers/skip", "convert", path, out, "--on-error", "skip", check=wrote(out, N, len(zero_width)))
    c.ok("zero_width_answers/validate", "validate", path, "--no-stamp", "--json", codes=(1,),
         check=validation(empty_text=len(zero_width), schema=0))
    extra = c.lines("extra_keys.jsonl", record(id=7, meta={"x": [1, 2]}, comment="extra"))
    c.ok("extra_keys", "convert", extra, c.out / "extra.jsonl", check=wrote(c.out / "extra.jsonl", N + 1, 0))
    sharegpt = [json.dumps({"conversations": [{"from": "human", "value": r["prompt"]}],
                            "chosen": {"from": "gpt", "value": r["chosen"]},
                            "rejected": {"from": "gpt", "value": r["rejected"]}}).encode() for r in GOOD[:3]]
    mixed = c.file("mixed_formats.jsonl", b"\n".join(sharegpt + GOOD_LINES) + b"\n")
    c.error("mixed_formats/raise", "convert", mixed, c.out / "mixed.jsonl")
    c.ok("mixed_formats/skip", "convert", mixed, c.out / "mixed.jsonl", "--on-error", "skip",
         check=wrote(c.out / "mixed.jsonl", 3, N))
    crlf = c.file("crlf.jsonl", b"\r\n".join(GOOD_LINES) + b"\r\n")
    c.ok("crlf_line_ends", "stats", crlf, "--json", check=figures(rows=N, rows_in=N))
    c.error("one_huge_line", "convert", c.file("one_huge_line.jsonl", b'{"prompt": "' + b"x" * (60 * MB)),
            c.out / "huge_line.jsonl", "--on-error", "skip")
    big = dict(GOOD[1], chosen=(GOOD[1]["chosen"] + "\n") * (50 * MB // (len(GOOD[1]["chosen"]) + 1)))
    path = c.lines("answer_50mb.jsonl", json.dumps(big).encode())
    c.ok("answer_50mb/validate", "validate", path, "--no-stamp", "--json", codes=(0, 1), timeout=300,
         check=validation(schema=0, empty_text=0))
    c.ok("answer_50mb/convert", "convert", path, c.out / "big.jsonl", timeout=300,
         check=wrote(c.out / "big.jsonl", N + 1, 0))
    scored = [json.dumps({**r, "score_chosen": 4.0 + i, "score_rejected": 1.0}).encode() for i, r in enumerate(GOOD)]
    overflow = json.dumps({**GOOD[0], "score_chosen": 1.5e308, "score_rejected": -1.5e308}).encode()
    path = c.file("overflowing_margin.jsonl", b"\n".join(scored + [overflow]) + b"\n")
    c.ok("overflowing_margin/filter", "filter", path, c.out / "margin.jsonl", "--min-margin", "1", "--json",
         check=summary_says(N, no_margin=1))
    c.ok("overflowing_margin/stats", "stats", path, "--json", check=figures(rows=N + 1, scored_pairs=N))


def json_documents(c: Corpus) -> None:
    doc = json.dumps(GOOD).encode()
    c.ok("json_utf8_bom", "stats", c.file("bom.json", codecs.BOM_UTF8 + doc), "--json", check=figures(rows=N))
    c.error("json_deep_document", "stats", c.file("deep_document.json", nested(100_000, "array")))
    deep = GOOD[:2] + [{"prompt": [json.loads(nested(70, "object"))], "chosen": "a", "rejected": "b"}] + GOOD[2:]
    c.bad_record("json_deep_record", c.file("deep_record.json", json.dumps(deep).encode()), command="dedupe")
    nan = json.dumps([{**r, "score_chosen": float("nan") if i == 3 else 2.0, "score_rejected": 1.0}
                      for i, r in enumerate(GOOD + [GOOD[0]])]).encode()
    c.bad_record("json_nan_score", c.file("nan_score.json", nan))
    texts = GOOD_LINES[:3] + [record()[:-1] + b', "chosen": "again"}'] + GOOD_LINES[3:]
    c.bad_record("json_duplicate_key", c.file("duplicate_key.json", b"[" + b",\n".join(texts) + b"]"))
    c.error("json_empty", "validate", c.file("empty.json", b""), "--no-stamp")
    c.error("json_only_whitespace", "stats", c.file("whitespace.json", b" \n\t\r\n  "))
    c.error("json_scalar", "stats", c.file("scalar.json", b"42"))
    c.error("json_two_lists", "stats", c.file("two_lists.json", json.dumps({"a": GOOD, "b": GOOD}).encode()))


def encodings(c: Corpus) -> None:
    text = b"\n".join(GOOD_LINES).decode() + "\n"
    for name, encoding, mark in [("utf16le_bom", "utf-16-le", "\ufeff"), ("utf16be_bom", "utf-16-be", "\ufeff"),
                                 ("utf32_bom", "utf-32", ""), ("utf8_bom", "utf-8", "\ufeff")]:
        path = c.file(f"{name}.jsonl", (mark + text).encode(encoding))
        c.ok(f"jsonl_{name}", "stats", path, "--json", check=figures(rows=N))
    c.ok("json_utf16_bom", "stats", c.file("utf16.json", ("\ufeff" + json.dumps(GOOD)).encode("utf-16-le")), "--json",
         check=figures(rows=N))
    c.ok("csv_utf16_bom", "stats", c.file("utf16.csv", ("\ufeff" + csv_text(GOOD)).encode("utf-16-le")), "--json",
         check=figures(rows=N))
    c.ok("csv_utf8_bom", "stats", c.file("bom.csv", ("\ufeff" + csv_text(GOOD)).encode()), "--json",
         check=figures(rows=N))
    c.error("utf16_without_bom", "stats", c.file("utf16_nobom.jsonl", text.encode("utf-16-le")))
    c.error("utf16_odd_length", "stats", c.file("utf16_odd.jsonl", ("\ufeff" + text).encode("utf-16-le")[:-1]))


def csv_text(rows: list[dict], newline_free: bool = True) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: v.replace("\n", " ") if newline_free and isinstance(v, str) else v for k, v in r.items()})
    return out.getvalue()


def gzips(c: Corpus) -> None:
    many = b"\n".join(GOOD_LINES * 100) + b"\n"
    packed = gzip.compress(many)
    cut = packed[: len(packed) // 2]
    whole_lines = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")  # independent of prefdata
    path = c.file("truncated.jsonl.gz", cut)
    c.error("gz_truncated_jsonl/raise", "convert", path, c.out / "cut.jsonl")
    c.ok("gz_truncated_jsonl/skip", "convert", path, c.out / "cut.jsonl", "--on-error", "skip",
         check=wrote(c.out / "cut.jsonl", whole_lines, 1))
    cut_document = gzip.compress(json.dumps(GOOD * 50).encode())[:-40]
    c.error("gz_truncated_json", "stats", c.file("truncated.json.gz", cut_document), "--on-error", "skip")
    table = csv_text(GOOD * 100).encode()
    packed = gzip.compress(table)
    cut = packed[: len(packed) // 2]
    whole_rows = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n") - 1  # minus the header
    path = c.file("truncated.csv.gz", cut)
    c.ok("gz_truncated_csv/skip", "convert", path, c.out / "cut_csv.jsonl", "--on-error", "skip",
         check=wrote(c.out / "cut_csv.jsonl", whole_rows, 1))
    broken = bytearray(gzip.compress(many))
    broken[len(broken) // 2: len(broken) // 2 + 64] = bytes(64)
    c.error("gz_corrupt", "convert", c.file("corrupt.jsonl.gz", bytes(broken)), c.out / "corrupt.jsonl",
            "--on-error", "skip")
    member = gzip.compress(bytes(64 * MB), 9)  # about 64 KB
    bomb = member * 64  # 64 gzip members: 4 GiB of zeros in a file of about 4 MB
    c.error("gz_bomb_4gib", "stats", c.file("bomb.jsonl.gz", bomb), timeout=120)
    c.error("gz_trailing_garbage", "stats", c.file("trailing.jsonl.gz", gzip.compress(many) + b"garbage!"))
    c.error("gz_empty", "stats", c.file("empty.jsonl.gz", gzip.compress(b"")))


def csvs(c: Corpus) -> None:
    rows = [dict(r) for r in GOOD]
    rows[1]["chosen"] = "y" * (100 * MB)
    path = c.file("field_100mb.csv", csv_text(rows).encode())
    c.ok("csv_100mb_field", "convert", path, c.out / "field.jsonl", timeout=300,
         check=wrote(c.out / "field.jsonl", N, 0))
    lines = csv_text(GOOD).splitlines()
    unbalanced = "\n".join(lines[:2] + ['q2,"an answer whose quote never closes,b2'] + lines[2:]) + "\n"
    c.error("csv_unbalanced_quote", "stats", c.file("unbalanced.csv", unbalanced.encode()))
    c.error("csv_duplicate_header", "stats",
            c.file("dup_header.csv", b"prompt,chosen,chosen,rejected\n" + b"q,a,b,c\n" * 3))
    c.error("csv_nul_byte", "stats", c.file("nul.csv", csv_text(GOOD).replace("a", "a\x00", 1).encode()))
    deep_cell = '"' + json.dumps([json.loads(nested(70, "object"))]).replace('"', '""') + '"'
    lines = csv_text(GOOD).splitlines()
    path = c.file("deep_cell.csv", "\n".join(lines[:3] + [f"{deep_cell},a,b"] + lines[3:]).encode() + b"\n")
    c.bad_record("csv_deep_json_cell", path)
    c.error("csv_header_only", "stats", c.file("header_only.csv", b"prompt,chosen,rejected\n"))
    c.ok("csv_crlf", "stats", c.file("crlf.csv", csv_text(GOOD).replace("\n", "\r\n").encode()), "--json",
         check=figures(rows=N))


def parquets(c: Corpus) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def parquet(name: str | None, table) -> Path | bytes:
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return c.file(name, buffer.getvalue()) if name else buffer.getvalue()

    columns = {k: [r[k] for r in GOOD] for k in ("prompt", "chosen", "rejected")}
    blob = parquet(None, pa.table(columns))  # a good file, cut or damaged below
    c.error("parquet_truncated", "stats", c.file("truncated.parquet", blob[: len(blob) // 2]))
    c.error("parquet_corrupt", "validate", c.file("corrupt.parquet", blob[:4] + bytes(len(blob) - 8) + blob[-4:]),
            "--no-stamp")
    c.error("parquet_not_parquet", "stats", c.file("png.parquet", b"\x89PNG\r\n\x1a\n" + bytes(64)))
    wrong = parquet("wrong_types.parquet", pa.table({**columns, "chosen": [[1, 2, 3]] * N}))
    c.error("parquet_list_of_ints/raise", "convert", wrong, c.out / "wrong.jsonl")
    c.ok("parquet_list_of_ints/skip", "convert", wrong, c.out / "wrong.jsonl", "--on-error", "skip",
         check=wrote(c.out / "wrong.jsonl", 0, N))
    dup = pa.table([pa.array(columns["prompt"]), pa.array(columns["chosen"]), pa.array(columns["chosen"]),
                    pa.array(columns["rejected"])], names=["prompt", "chosen", "chosen", "rejected"])
    c.error("parquet_duplicate_column", "length-bias", parquet("dup_column.parquet", dup))
    nan = parquet("nan_score.parquet", pa.table({**columns, "score_chosen": [2.0] * (N - 1) + [float("nan")],
                                                 "score_rejected": [1.0] * N}))
    c.error("parquet_nan_score/raise", "split", nan, c.out / "split_nan")
    c.ok("parquet_nan_score/skip", "convert", nan, c.out / "nan.jsonl", "--on-error", "skip",
         check=wrote(c.out / "nan.jsonl", N - 1, 1))
    empty = parquet("no_rows.parquet", pa.table({k: pa.array([], pa.string()) for k in columns}))
    c.ok("parquet_no_rows", "stats", empty, "--json", check=figures(rows=0, rows_in=0))


def paths(c: Corpus) -> None:
    fifo = c.folder / "pipe.jsonl"
    os.mkfifo(fifo)
    c.files.append(fifo)
    c.error("fifo", "convert", fifo, c.out / "fifo.jsonl", timeout=60)
    sock = c.folder / "socket.jsonl"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock))
    c.files.append(sock)
    c.error("socket", "stats", sock, timeout=60)
    c.error("character_device", "stats", "/dev/zero", timeout=60)
    folder = c.folder / "folder.jsonl"
    folder.mkdir()
    c.files.append(folder)
    c.error("directory_named_jsonl", "stats", folder)
    loop = c.folder / "loop.jsonl"
    loop.symlink_to(c.folder / "loop2.jsonl")
    (c.folder / "loop2.jsonl").symlink_to(loop)
    c.files.append(loop)
    c.error("symlink_loop", "filter", loop, c.out / "loop.jsonl")
    broken = c.folder / "broken.jsonl"
    broken.symlink_to(c.folder / "nothing-here.jsonl")
    c.files.append(broken)
    c.error("broken_symlink", "stats", broken)
    newline = c.file("two\nlines.jsonl", b"\n".join(GOOD_LINES) + b"\n")
    c.ok("newline_in_path", "convert", newline, c.out / "newline.jsonl", check=wrote(c.out / "newline.jsonl", N, 0))
    (c.folder / "sub").mkdir()
    c.error("missing_file_in_local_folder", "stats", "sub/missing.jsonl", timeout=60)
    c.error("empty_jsonl", "stats", c.file("empty.jsonl", b""))
    c.error("only_whitespace_jsonl", "split", c.file("whitespace.jsonl", b"\n \n\t\n\r\n"), c.out / "ws_split")
    c.error("nul_only_file", "stats", c.file("zeros.json", bytes(4096)))
    c.error("unknown_suffix", "stats", c.file("notes.txt", b"hello, these are not records\n"))


def build(folder: Path) -> tuple[list[Case], list[Path]]:
    """Write the corpus into `folder`; return its cases and the files (and other paths) it made."""
    c = Corpus(folder)
    for part in (json_records, json_documents, encodings, gzips, csvs, parquets, paths):
        part(c)
    return c.cases, c.files


def run(cases: list[Case], cwd: Path, workers: int = 2) -> list[Outcome]:
    """All cases, a few at a time (each is a fresh process that mostly waits on its imports)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda case: run_case(case, cwd), cases))


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="prefdata-hostile-") as tmp:
        cases, files = build(Path(tmp))
        outcomes = run(cases, Path(tmp))
    for o in outcomes:
        print(f"{o.kind:15} {o.case}: {o.detail.splitlines()[0][:150] if o.detail else ''}")
    print(f"{len(files)} hostile inputs, {len(cases)} cases")
    print(report(outcomes).splitlines()[-1])
    return 0 if not any(summary(outcomes)[k] for k in ("traceback", "hang", "silently_wrong")) else 1


if __name__ == "__main__":
    sys.exit(main())
