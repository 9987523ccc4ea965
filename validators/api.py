"""Validate a dataset: read it, run the catalogue (and the pre-flight with a tokenizer), stamp it.

Usable from a notebook as from the CLI:

    from prefdata.validators import validate
    report = validate("out/quickstart", tokenizer="/path/to/sft-model")
    report.passed, report.check("length_bias").value
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from prefdata.errors import PrefdataError
from prefdata.fingerprint import fingerprint
from prefdata.io import read_dataset
from prefdata.io.reader import input_fields, raw_column
from prefdata.validators.catalogue import run_checks
from prefdata.validators.inputs import Inputs
from prefdata.validators.result import Report
from prefdata.validators.stamp import DOCS, docs_path, write_stamp
from prefdata.thresholds import Thresholds

JUDGMENTS = "judgments.parquet"
LANGUAGE = "language"  # a column written by a language filter: the prompt's language, checked against answers
MANIFEST = "manifest.json"


def _find(tree: Any, key: str) -> Any:
    """The first value of `key` anywhere in a nested spec (e.g. a curation step's `min_margin`)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find(item, key)
            if found is not None:
                return found
    return None


def spec_thresholds(spec: dict[str, Any] | None) -> dict[str, Any]:
    """A spec's `validation:` section, and the curation's `min_margin` when the section does not set one."""
    if not spec:
        return {}
    out = dict(spec.get("validation") or {})
    if out.get("min_margin") is None and (margin := _find(spec.get("curate"), "min_margin")) is not None:
        out["min_margin"] = margin
    return out


def _manifest_spec(data: Path) -> dict[str, Any] | None:
    manifest = data / MANIFEST if data.is_dir() else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        return json.loads(manifest.read_text(encoding="utf-8")).get("spec")
    except (OSError, ValueError):
        return None


def _manifest_review(data: Path) -> str | None:
    manifest = data / MANIFEST if data.is_dir() else None
    if manifest is None or not manifest.is_file():
        return None
    try:
        return (json.loads(manifest.read_text(encoding="utf-8")).get("review") or {}).get("log")
    except (OSError, ValueError, AttributeError):
        return None


def make_thresholds(*layers: dict[str, Any] | None) -> Thresholds:
    """Defaults, then each layer in turn (spec, then command line); unknown names are bad input."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in (layer or {}).items() if v is not None})
    try:
        return Thresholds.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "thresholds"
        raise PrefdataError(f"threshold {where}: {err['msg']} (known: {', '.join(Thresholds.model_fields)})") from None


def validate_frame(frame: pl.DataFrame, kind: str, *, thresholds: Thresholds | None = None,
                   tokenizer: Any = None, max_length: int | None = None, test: pl.DataFrame | None = None,
                   judgments: pl.DataFrame | None = None, read_dropped: pl.DataFrame | None = None,
                   category: str | None = None, examples: int = 3, data: str = "<frame>",
                   only: tuple[str, ...] | None = None, content_fingerprint: str | None = None,
                   gx_docs: str | Path | None = None) -> Report:
    """Run the catalogue (and, with `tokenizer`, the pre-flight) over a canonical table; with `gx_docs`,
    also the Great Expectations suite, writing Data Docs into that folder."""
    thresholds = thresholds or Thresholds()
    if max_length is not None:
        thresholds = thresholds.model_copy(update={"max_length": max_length})
    inputs = Inputs(frame, kind, thresholds, read_dropped=read_dropped, judgments=judgments, test=test,
                    category=category, examples=examples)
    checks = run_checks(inputs, only=only)
    unusable = any(c.name == "schema" and "columns" in c.figures for c in checks)  # nothing to render
    if tokenizer is not None and not unusable:
        from prefdata.validators.preflight import preflight

        checks += preflight(inputs, tokenizer)
    settings = {"thresholds": thresholds.model_dump(), "tokenizer": None if tokenizer is None else str(tokenizer),
                "category": category, "test": test is not None}
    report = Report(data, kind, frame.height, content_fingerprint or fingerprint(frame), checks, settings)
    if gx_docs is not None:
        from prefdata.validators.gx_suite import run_suite

        report.gx = run_suite(inputs, report, Path(gx_docs))
    return report


def _docs_for(path: Path) -> Path:
    """Data Docs beside local data; for a Hub id, in the working folder under the id's name."""
    return docs_path(path) if path.exists() else Path(str(path).replace("/", "__") + "." + DOCS)


def validate(data: str | Path, *, format: str | None = None, split: str | None = None,
             thresholds: dict[str, Any] | None = None, spec: dict[str, Any] | None = None,
             tokenizer: Any = None, max_length: int | None = None, test: str | Path | None = None,
             category: str | None = None, examples: int = 3, stamp: bool = True, gx: bool = False,
             review_log: str | None = None) -> Report:
    """Validate the dataset at `data` (file, dataset folder or Hub id).

    Thresholds: the defaults, then the spec's `validation:` section (`spec`, or the build's own spec in
    a prefdata dataset folder's manifest), then `thresholds`. Unreadable records are not fatal: they
    fail the `schema` / `empty_text` checks. With `stamp`, `validation.json` is written beside the data;
    with `gx`, the Great Expectations suite runs too and its Data Docs are written beside the data.
    `review_log`: the digest of the decision log applied to this data (default: the one a build folder's
    manifest names); the stamp records it, and a log that differs from it makes the stamp stale.
    """
    path = Path(data)
    result = read_dataset(data, format=format, on_error="skip", split=split)
    limits = make_thresholds(spec_thresholds(spec if spec is not None else _manifest_spec(path)), thresholds)
    judgments = pl.read_parquet(path / JUDGMENTS) if path.is_dir() and (path / JUDGMENTS).is_file() else None
    test_frame = read_dataset(test, on_error="skip").frame if test is not None else None
    frame = result.frame
    fields = input_fields(data, split)
    if category is not None and category not in fields:
        raise PrefdataError(f"{data}: no field {category!r} for --category (fields: {', '.join(sorted(fields))})")
    for column in {c for c in (category, LANGUAGE) if c in fields and c not in frame.columns}:  # not in the table
        frame = frame.with_columns(raw_column(data, column, result.dropped, split).alias(column))
    report = validate_frame(frame, result.kind, thresholds=limits, tokenizer=tokenizer, max_length=max_length,
                            test=test_frame, judgments=judgments, read_dropped=result.dropped, category=category,
                            examples=examples, data=str(data), content_fingerprint=fingerprint(result.frame),
                            gx_docs=_docs_for(path) if gx else None)
    report.settings["format"] = result.format
    report.settings["rows_in"] = result.rows_in
    if stamp and path.exists():
        applied = review_log if review_log is not None else _manifest_review(path)
        write_stamp(path, report, fmt=result.format, review=applied)
    return report
