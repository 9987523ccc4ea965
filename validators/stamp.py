"""The validation stamp: `validation.json` beside the data, binding a validation result to the data's bytes.

It holds the content fingerprint (`prefdata.fingerprint`), the sha256 of every data file, and the
checks with their figures. `check_stamp` is what `align train` calls: a stamp is valid only if it
says the validation passed and no byte of the data has changed since.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from prefdata import strict_json

STAMP = "validation.json"
DOCS = "validation_docs"
PREFDATA_DATA = "data.parquet"  # a prefdata dataset folder's training table
CHUNK = 1 << 20

State = Literal["valid", "missing", "stale", "failed", "unreadable"]


@dataclass
class StampStatus:
    state: State
    path: Path
    message: str
    stamp: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.state == "valid"


def stamp_path(data: str | Path) -> Path:
    """`DIR/validation.json` for a dataset folder, `FILE.validation.json` beside a single file."""
    data = Path(data)
    return data / STAMP if data.is_dir() else data.with_name(data.name + "." + STAMP)


def docs_path(data: str | Path) -> Path:
    data = Path(data)
    return data / DOCS if data.is_dir() else data.with_name(data.name + "." + DOCS)


def data_files(data: str | Path) -> list[Path]:
    """The files a reader takes the data from: the file itself, a prefdata folder's `data.parquet`, or
    every file of a `save_to_disk` folder except what validation writes there."""
    data = Path(data)
    if not data.is_dir():
        return [data]
    if (data / PREFDATA_DATA).is_file():
        return [data / PREFDATA_DATA]
    ours = {data / STAMP, data / DOCS}
    return sorted(p for p in data.rglob("*") if p.is_file() and not any(o == p or o in p.parents for o in ours))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def file_digests(data: str | Path) -> dict[str, str]:
    base = Path(data) if Path(data).is_dir() else Path(data).parent
    return {str(p.relative_to(base)): _sha256(p) for p in data_files(data)}


def _version() -> str | None:
    try:
        return metadata.version("prefdata")
    except metadata.PackageNotFoundError:
        return None


def write_stamp(data: str | Path, report: Any, *, fmt: str | None = None, review: str | None = None) -> Path:
    """Write the stamp for `report` (a `validators.result.Report` of `data`); `review`: the digest of the
    decision log (`prefdata review`) applied to the data, if any."""
    body = {
        "passed": report.passed,
        "fingerprint": report.fingerprint,
        "files": file_digests(data),
        "format": fmt,
        "kind": report.kind,
        "rows": report.rows,
        "validated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "prefdata": _version(),
        "settings": report.settings,
        "review": review,
        "checks": [{k: c.as_dict()[k] for k in ("name", "severity", "passed", "value", "threshold", "message",
                                                 "figures", "skipped")} for c in report.checks],
    }
    if getattr(report, "gx", None):
        body["gx"] = {k: report.gx[k] for k in ("success", "all_met", "expectations", "failed", "index")}
    path = stamp_path(data)
    path.write_text(strict_json.dumps(body) + "\n", encoding="utf-8")
    return path


def check_stamp(data_dir: str | Path, frame: Any = None) -> StampStatus:
    """Is `data_dir` (a dataset folder or file) stamped by a passing validation, and unchanged since?

    Any changed byte of a data file makes the stamp stale. Pass the Polars `frame` you read from it to
    also compare the content fingerprint (what training will actually see).
    """
    path = stamp_path(data_dir)
    if not path.is_file():
        return StampStatus("missing", path, f"{data_dir}: not validated (no {path.name}); run `prefdata validate`")
    try:
        stamp = json.loads(path.read_text(encoding="utf-8"))
        files = dict(stamp["files"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return StampStatus("unreadable", path, f"{path}: unreadable stamp ({exc})")
    now = file_digests(data_dir)
    changed = sorted(set(files) ^ set(now) | {k for k in files.keys() & now.keys() if files[k] != now[k]})
    if changed:
        return StampStatus("stale", path, f"{data_dir}: changed since validation ({', '.join(changed)}); "
                                          "run `prefdata validate` again", stamp)
    from prefdata.review import log as review_log

    pending = review_log.digest(review_log.log_path(data_dir))
    if pending is not None and pending != stamp.get("review"):
        return StampStatus("stale", path, f"{data_dir}: a person's review decisions "
                                          f"({review_log.log_path(data_dir).name}) are not applied yet; apply them "
                                          "(`prefdata build SPEC --from review`, or a `human_review` curate step) "
                                          "and validate the result", stamp)
    if frame is not None:
        from prefdata.fingerprint import fingerprint

        if fingerprint(frame) != stamp.get("fingerprint"):
            return StampStatus("stale", path, f"{data_dir}: content fingerprint differs from the stamp's", stamp)
    if not stamp.get("passed"):
        failed = [c["name"] for c in stamp.get("checks", []) if c["severity"] == "error" and not c["passed"]]
        return StampStatus("failed", path, f"{data_dir}: validation failed ({', '.join(failed)})", stamp)
    return StampStatus("valid", path, f"{data_dir}: validated {stamp.get('validated_at')}", stamp)
