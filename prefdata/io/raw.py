"""Raw records from files, dataset folders and Hub ids, each with its location for error messages.

A source yields `Raw` items: a parsed dict, or the error that stopped it from being one. Errors are
not raised here, so that `--on-error skip` can set a bad line aside and go on. JSON text is parsed by
`prefdata.strict_json` (bounded nesting and integers, no duplicate keys, no lone surrogates); paths,
gzip and text encodings are handled by `prefdata.io.files`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prefdata import strict_json
from prefdata.errors import InputError
from prefdata.io.files import as_utf8, open_regular, path_kind, read_bytes

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PARQUET_MAGIC = b"PAR1"
DATA_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".gz")


@dataclass
class Raw:
    data: dict[str, Any] | None  # None when the record could not be parsed
    line: int | None = None      # 1-based line in a text file
    row: int | None = None       # 1-based row in a table
    error: str | None = None
    text: str | None = None      # the raw text, kept for the rejects file when parsing failed
    reason: str = "malformed_record"
    field: str | None = None


def _shown(line: bytes) -> str:
    return line.decode("utf-8", "backslashreplace")


def _problem(problem: strict_json.JsonProblem, text: str, **where: Any) -> Raw:
    return Raw(None, error=problem.message, text=text, reason=problem.reason, field=problem.field, **where)


def _json_line(line: bytes, number: int) -> Raw:
    if b"\x00" in line:
        column = line.index(b"\x00") + 1
        return Raw(None, line=number, error=f"NUL byte at column {column}", text=_shown(line), reason="nul_byte")
    try:
        decoded = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Raw(None, line=number, error=f"invalid UTF-8 at byte {exc.start + 1} of the line", text=_shown(line),
                   reason="invalid_utf8")
    try:
        value = strict_json.loads(decoded)
    except strict_json.JsonProblem as problem:
        return _problem(problem, decoded, line=number)
    if not isinstance(value, dict):
        return Raw(None, line=number, error=f"expected a JSON object, got {type(value).__name__}", text=decoded)
    problem = strict_json.check(value, decoded)
    return Raw(value, line=number) if problem is None else _problem(problem, decoded, line=number)


def _json_lines(path: Path, blob: bytes, cut: str | None = None) -> Iterator[Raw]:
    lines = blob.split(b"\n")
    tail = lines.pop() if cut else b""  # after a cut, the last piece is a partial line
    for number, line in enumerate(lines, start=1):
        if line.strip():
            yield _json_line(line, number)
    if cut:
        yield Raw(None, line=len(lines) + 1, error=f"{cut}: the lines before this one were read", text=_shown(tail),
                  reason="truncated_file")


def _line_of(blob: bytes, offset: int) -> int:
    return blob.count(b"\n", 0, offset) + 1


def _empty(name: str, blob: bytes) -> InputError:
    return InputError(name, "no records: the file " + ("holds only whitespace" if blob else "is empty"))


def _json_document(path: Path, blob: bytes, cut: str | None = None) -> Iterator[Raw]:
    name = str(path)
    if cut:
        raise InputError(name, f"{cut}; a .json document cannot be read in part (JSON Lines can)")
    if b"\x00" in blob:
        offset = blob.index(b"\x00")
        raise InputError(name, "NUL byte in file", line=_line_of(blob, offset), whole_file=True)
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, "invalid UTF-8", line=_line_of(blob, exc.start), whole_file=True) from None
    if not text.strip():
        raise _empty(name, blob)
    try:
        doc = strict_json.loads(text, mark_duplicates=True)
    except strict_json.JsonProblem as problem:
        if problem.decode_error == "Extra data":  # several objects, one per line: JSON Lines in a .json file
            yield from _json_lines(path, blob)
            return
        message = problem.message.replace("malformed JSON", "not valid JSON") if problem.decode_error \
            else problem.message
        raise InputError(name, message, line=problem.line, field=problem.field, whole_file=True) from None
    if (key := strict_json.duplicated_key(doc)) is not None:
        raise InputError(name, f"duplicate key {key!r} in the document's top object")
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(name, "expected a JSON array of records (or an object holding exactly one)")
        doc = lists[0]
    if not isinstance(doc, list):
        raise InputError(name, f"expected a JSON array of records, got {type(doc).__name__}")
    surrogates = strict_json.has_surrogate_escape(text)
    for number, value in enumerate(doc, start=1):
        if not isinstance(value, dict):
            yield Raw(None, row=number, error=f"expected an object, got {type(value).__name__}",
                      text=strict_json.dumps(value, indent=None)[:2000])
        elif (problem := strict_json.check(value, strings=surrogates)) is not None:
            yield _problem(problem, strict_json.dumps(value, indent=None)[:2000], row=number)
        else:
            yield Raw(value, row=number)


def _from_rows(rows: Iterator[dict[str, Any]]) -> Iterator[Raw]:
    for number, value in enumerate(rows, start=1):
        yield Raw(value, row=number)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    return next((n for n in names if n in seen or seen.add(n)), None)


def _parquet(path: Path) -> Iterator[Raw]:
    import pyarrow.parquet as pq

    name = str(path)
    with open_regular(path) as f:
        if f.read(4) != PARQUET_MAGIC:
            raise InputError(name, "not a Parquet file (no PAR1 header)")
    # pyarrow reads the path itself: given a Python file object, its reader threads outlived an early exit and
    # aborted the process ("terminate called without an active exception") in half the runs here
    try:
        columns = pq.read_schema(path).names
        if (column := _duplicate(columns)) is not None:  # refused, as duplicate keys in JSON are
            raise InputError(name, f"duplicate column {column!r}")
        table = pq.read_table(path)
    except InputError:
        raise
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(name, f"unreadable Parquet file ({_first_line(exc)})") from None
    yield from _from_rows(iter(table.to_pylist()))


def _maybe_json(cell: Any) -> Any:
    """CSV cells holding message lists are JSON text; decode those, leave other text alone. JSON that is
    refused for a reason other than its syntax (too deep, a huge integer...) is a `JsonProblem`."""
    if isinstance(cell, str) and cell[:1] in "[{" and cell.rstrip()[-1:] in "]}":
        try:
            value = strict_json.loads(cell)
        except strict_json.JsonProblem as problem:
            if problem.decode_error is not None:
                return cell
            raise
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
            if (problem := strict_json.check(value, cell)) is not None:
                raise problem
            return value
    return cell


def _csv_row(row: dict[str, Any], number: int) -> Raw:
    out = {}
    for key, cell in row.items():
        if cell is None:
            continue
        try:
            out[key] = _maybe_json(cell)
        except strict_json.JsonProblem as problem:
            inner = problem.field or ""
            problem.field = key + (inner if inner.startswith("[") or not inner else f".{inner}")
            return _problem(problem, strict_json.dumps(row, indent=None), row=number)
    return Raw(out, row=number)


def _csv(path: Path, blob: bytes, cut: str | None = None) -> Iterator[Raw]:
    import polars as pl

    name = str(path)
    tail = b""
    if cut:  # keep whole lines only; the partial one is reported as the cut
        end = blob.rfind(b"\n") + 1
        blob, tail = blob[:end], blob[end:]
    if b"\x00" in blob:
        raise InputError(name, "NUL byte in file", line=_line_of(blob, blob.index(b"\x00")), whole_file=True)
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, "invalid UTF-8", line=_line_of(blob, exc.start), whole_file=True) from None
    if not blob.strip():
        raise _empty(name, blob)
    try:
        frame = pl.read_csv(blob, infer_schema=False)
    except Exception as exc:
        raise InputError(name, f"not a readable CSV file ({_first_line(exc)})") from None
    renamed = [c for c in frame.columns if (m := re.fullmatch(r"(.+)_duplicated_\d+", c)) and m[1] in frame.columns]
    if renamed:  # Polars renames a repeated header; refused, as duplicate keys in JSON are
        raise InputError(name, f"duplicate column {renamed[0].rsplit('_duplicated_', 1)[0]!r}")
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        yield _csv_row(row, number)
    if cut:
        yield Raw(None, row=frame.height + 1, error=f"{cut}: the rows before this one were read", text=_shown(tail),
                  reason="truncated_file")


def _arrow_dataset(obj: Any, name: str, split: str | None) -> Iterator[Raw]:
    """A `datasets.Dataset` or `DatasetDict`: pick the split, then yield its rows."""
    import datasets

    if isinstance(obj, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        splits = list(obj.keys())
        chosen = split or ("train" if "train" in splits else (splits[0] if len(splits) == 1 else None))
        if chosen not in splits:
            raise InputError(name, f"choose a split with --split (found: {', '.join(splits)})")
        obj = obj[chosen]
    yield from _from_rows(iter(obj))


def _saved_dataset(path: Path, split: str | None) -> Iterator[Raw]:
    import datasets

    try:
        obj = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise InputError(str(path), f"not a datasets folder ({_first_line(exc)})") from None
    yield from _arrow_dataset(obj, str(path), split)


def hub_dataset(repo_id: str, split: str | None = None, revision: str | None = None) -> Iterator[Raw]:
    """A dataset from the Hugging Face Hub (or anything else `datasets.load_dataset` takes, such as a
    local folder of data files). The token comes from the environment (`HF_TOKEN`)."""
    import datasets

    try:
        obj = datasets.load_dataset(repo_id, split=split, revision=revision)
    except Exception as exc:
        raise InputError(repo_id, f"could not load dataset ({type(exc).__name__}: {exc})") from None
    yield from _arrow_dataset(obj, repo_id, split)


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes if s.lower() != ".gz"]


def _local(path: Path) -> bool:
    """A missing path that names a data file or sits in a local folder is a missing file, not a Hub id."""
    return path.suffix.lower() in DATA_SUFFIXES or Path(path.parts[0]).is_dir()


@dataclass
class JsonLines:
    """A whole JSON Lines file, read but not yet parsed: the reader may take it line by line (`raws`) or as a
    table (`prefdata.io.fast`)."""

    path: Path
    blob: bytes

    def raws(self) -> Iterator[Raw]:
        return _json_lines(self.path, self.blob)


def _lines(path: Path, blob: bytes, cut: str | None) -> Iterator[Raw] | JsonLines:
    return _json_lines(path, blob, cut) if cut else JsonLines(path, blob)


def open_source(source: str | Path, split: str | None = None) -> Iterator[Raw] | JsonLines:
    """`source` opened: a whole JSON Lines file as `JsonLines`, anything else as its records."""
    path = Path(source)
    kind = path_kind(path)
    if kind == "dir":
        if path_kind(path / "data.parquet") == "file":  # a prefdata dataset folder
            return _parquet(path / "data.parquet")
        return _saved_dataset(path, split)
    if kind == "missing":
        if HUB_ID.match(str(source)) and not _local(path):
            return hub_dataset(str(source), split=split)
        raise InputError(str(source), "no such file or folder")
    suffix = (_suffixes(path) or [""])[-1]
    if suffix == ".parquet":
        return _parquet(path)
    loaded = read_bytes(path)
    if suffix not in (".csv", ".json", ".jsonl", ".ndjson") and loaded.data[:4] == PARQUET_MAGIC:
        return _parquet(path)
    blob = as_utf8(loaded.data, str(path))
    if suffix == ".csv":
        return _csv(path, blob, loaded.cut)
    if suffix == ".json":
        return _json_document(path, blob, loaded.cut)
    if suffix in (".jsonl", ".ndjson"):
        return _lines(path, blob, loaded.cut)
    first = blob.lstrip()[:1]
    if first == b"[":
        return _json_document(path, blob, loaded.cut)
    if first == b"{":
        return _lines(path, blob, loaded.cut)
    raise InputError(str(path), "unknown file type: use .jsonl, .json, .parquet, .csv or a dataset folder")


def iter_raw(source: str | Path, split: str | None = None) -> Iterator[Raw]:
    """Every record of `source`: a file, a dataset folder, or a Hub dataset id."""
    opened = open_source(source, split)
    return opened.raws() if isinstance(opened, JsonLines) else opened
