"""Raw records from files, dataset folders and Hub ids, each with its location for error messages.

A source yields `Raw` items: a parsed dict, or the error that stopped it from being one. Errors are
not raised here, so that `--on-error skip` can set a bad line aside and go on.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from prefdata.errors import InputError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"


@dataclass
class Raw:
    data: dict[str, Any] | None  # None when the record could not be parsed
    line: int | None = None      # 1-based line in a text file
    row: int | None = None       # 1-based row in a table
    error: str | None = None
    text: str | None = None      # the raw text, kept for the rejects file when parsing failed


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data


def _json_lines(path: Path, blob: bytes) -> Iterator[Raw]:
    blob = blob.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not part of the data
    for number, line in enumerate(blob.split(b"\n"), start=1):
        if not line.strip():
            continue
        text = line.decode("utf-8", "backslashreplace")
        if b"\x00" in line:
            column = line.index(b"\x00") + 1
            yield Raw(None, line=number, error=f"NUL byte at column {column}", text=text)
            continue
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield Raw(None, line=number, error=f"invalid UTF-8 at byte {exc.start + 1} of the line", text=text)
            continue
        try:
            value = json.loads(decoded)
        except json.JSONDecodeError as exc:
            yield Raw(None, line=number, error=f"malformed JSON ({exc.msg} at column {exc.colno})", text=text)
            continue
        if not isinstance(value, dict):
            yield Raw(None, line=number, error=f"expected a JSON object, got {type(value).__name__}", text=text)
            continue
        yield Raw(value, line=number)


def _line_of(blob: bytes, offset: int) -> int:
    return blob.count(b"\n", 0, offset) + 1


def _json_document(path: Path, blob: bytes) -> Iterator[Raw]:
    name = str(path)
    if b"\x00" in blob:
        offset = blob.index(b"\x00")
        raise InputError(name, "NUL byte in file", line=_line_of(blob, offset))
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, "invalid UTF-8", line=_line_of(blob, exc.start)) from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # several objects, one per line: JSON Lines in a .json file
            yield from _json_lines(path, blob)
            return
        raise InputError(name, f"not valid JSON ({exc.msg} at column {exc.colno})", line=exc.lineno) from None
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InputError(name, "expected a JSON array of records (or an object holding exactly one)")
        doc = lists[0]
    if not isinstance(doc, list):
        raise InputError(name, f"expected a JSON array of records, got {type(doc).__name__}")
    for number, value in enumerate(doc, start=1):
        if isinstance(value, dict):
            yield Raw(value, row=number)
        else:
            yield Raw(None, row=number, error=f"expected an object, got {type(value).__name__}",
                      text=json.dumps(value)[:2000])


def _from_rows(rows: Iterator[dict[str, Any]]) -> Iterator[Raw]:
    for number, value in enumerate(rows, start=1):
        yield Raw(value, row=number)


def _parquet(path: Path) -> Iterator[Raw]:
    import pyarrow.parquet as pq

    head = path.read_bytes()[:4]
    if head != PARQUET_MAGIC:
        raise InputError(str(path), "not a Parquet file (no PAR1 header)")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InputError(str(path), f"unreadable Parquet file ({exc})") from None
    yield from _from_rows(iter(table.to_pylist()))


def _maybe_json(cell: Any) -> Any:
    """CSV cells holding message lists are JSON text; decode those, leave other text alone."""
    if isinstance(cell, str) and cell[:1] in "[{" and cell.rstrip()[-1:] in "]}":
        try:
            value = json.loads(cell)
        except json.JSONDecodeError:
            return cell
        if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
            return value
    return cell


def _csv(path: Path, blob: bytes) -> Iterator[Raw]:
    import polars as pl

    name = str(path)
    if b"\x00" in blob:
        raise InputError(name, "NUL byte in file", line=_line_of(blob, blob.index(b"\x00")))
    try:
        blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, "invalid UTF-8", line=_line_of(blob, exc.start)) from None
    try:
        frame = pl.read_csv(blob, infer_schema=False)
    except Exception as exc:
        raise InputError(name, f"not a readable CSV file ({exc})") from None
    for number, row in enumerate(frame.iter_rows(named=True), start=1):
        yield Raw({k: _maybe_json(v) for k, v in row.items() if v is not None}, row=number)


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
        raise InputError(str(path), f"not a datasets folder ({exc})") from None
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


def iter_raw(source: str | Path, split: str | None = None) -> Iterator[Raw]:
    """Every record of `source`: a file, a dataset folder, or a Hub dataset id."""
    path = Path(source)
    if path.is_dir():
        if (path / "data.parquet").is_file():  # a prefdata dataset folder
            return _parquet(path / "data.parquet")
        return _saved_dataset(path, split)
    if not path.exists():
        if HUB_ID.match(str(source)):
            return hub_dataset(str(source), split=split)
        raise InputError(str(source), "no such file or folder")
    suffix = (_suffixes(path) or [""])[-1]
    if suffix == ".parquet":
        return _parquet(path)
    blob = _read_bytes(path)
    if suffix == ".csv":
        return _csv(path, blob)
    if suffix == ".json":
        return _json_document(path, blob)
    if suffix in (".jsonl", ".ndjson"):
        return _json_lines(path, blob)
    if blob[:4] == PARQUET_MAGIC:
        return _parquet(path)
    first = blob.lstrip()[:1]
    if first == b"[":
        return _json_document(path, blob)
    if first == b"{":
        return _json_lines(path, blob)
    raise InputError(str(path), "unknown file type: use .jsonl, .json, .parquet, .csv or a dataset folder")
