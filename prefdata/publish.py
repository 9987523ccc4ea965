"""Publishing a dataset folder to the Hugging Face Hub (`prefdata push`).

The folder that goes up is staged first, so it can be checked without the Hub: Parquet files per split
under `data/` (what `datasets.load_dataset` reads), the card (`README.md`, whose `configs` metadata names
the splits), its plots, `manifest.json`, and the validation stamp so that `align train` can check the
data after download. The token comes from the environment (`HF_TOKEN`, or the variable named), never
from an argument that would land in shell history or a log.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import polars as pl
import yaml

from prefdata.errors import PrefdataError
from prefdata.report.hub import SFT_FILE, configs, split_parts
from prefdata.safe_yaml import loads

# data.parquet goes up too: the stamp's file digest names it, so `align train` can check a downloaded copy.
SIDE_FILES = ("data.parquet", SFT_FILE, "manifest.json", "validation.json", "margins.png", "length_diff.png",
              "length_bias.png")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _splits(folder: Path) -> dict[str, pl.DataFrame]:
    """train (and test) tables: a `split` column splits `data.parquet`; `train.parquet` / `test.parquet`
    files are taken as they are."""
    files = {name: folder / f"{name}.parquet" for name in ("train", "test") if (folder / f"{name}.parquet").is_file()}
    if files:
        return {name: pl.read_parquet(path) for name, path in files.items()}
    data = folder / "data.parquet"
    if not data.is_file():
        raise PrefdataError(f"{folder}: no data.parquet (or train.parquet) to publish")
    return split_parts(pl.read_parquet(data))


def _card(folder: Path, splits: list[str]) -> str:
    """The folder's card with `configs` metadata pointing at the staged split files."""
    source = folder / "README.md"
    text = source.read_text(encoding="utf-8") if source.is_file() else f"# {folder.name}\n"
    meta, body = {}, text
    if text.startswith("---\n"):
        _, head, body = text.split("---\n", 2)
        meta = loads(head, str(source)).data or {}  # a folder's card is user input: the bounded loader
    sft = (folder / SFT_FILE).is_file()
    meta["configs"] = configs({s: f"data/{s}-*.parquet" for s in splits}, sft)  # the build's card, staged paths
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body.lstrip("\n")


def _looks_staged(target: Path) -> bool:
    """A folder that stage_upload wrote: README.md, a data/ folder of Parquet files, and side files only."""
    names = {p.name for p in target.iterdir()}
    data = target / "data"
    return ((target / "README.md").is_file() and data.is_dir() and names <= {"README.md", "data", *SIDE_FILES}
            and all(p.is_file() and p.suffix == ".parquet" for p in data.iterdir()))


def _check_target(folder: Path, target: Path) -> None:
    """Refuse a staging target whose replacement would delete the dataset or anything else."""
    here, there = folder.resolve(), target.resolve()
    if there == here or here in there.parents or there in here.parents:
        raise PrefdataError(f"--stage-only {target}: must be outside the dataset folder {folder} and not contain it")
    if there.exists() and not there.is_dir():
        raise PrefdataError(f"--stage-only {target}: exists and is not a folder")
    if there.is_dir() and any(there.iterdir()) and not _looks_staged(there):
        raise PrefdataError(f"--stage-only {target}: folder is not empty and is not an earlier staging "
                            "(README.md, data/ and side files only); choose a new or empty folder")


def stage_upload(folder: str | Path, target: str | Path) -> Path:
    """Lay out exactly what would be uploaded, in `target` (a new or empty folder, or an earlier staging,
    which is replaced)."""
    folder, target = Path(folder), Path(target)
    _check_target(folder, target)
    splits = _splits(folder)
    if target.exists():
        shutil.rmtree(target)
    (target / "data").mkdir(parents=True)
    for name, frame in splits.items():
        frame.write_parquet(target / "data" / f"{name}-00000-of-00001.parquet")
    for side in SIDE_FILES:
        if (folder / side).is_file():
            shutil.copy2(folder / side, target / side)
    (target / "README.md").write_text(_card(folder, list(splits)), encoding="utf-8")
    return target


def push(folder: str | Path, repo_id: str, *, private: bool = False, token_env: str = "HF_TOKEN",
         endpoint: str | None = None, message: str = "Upload preference dataset with prefdata") -> str:
    """Stage `folder` and upload it as a dataset repo; returns the commit URL."""
    if not REPO_ID.match(repo_id):
        raise PrefdataError(f"--repo-id must look like ORG/NAME, got {repo_id!r}")
    token = os.environ.get(token_env)
    if not token:
        raise PrefdataError(f"set the {token_env} environment variable to a Hugging Face token with write access")
    from huggingface_hub import HfApi

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        staged = stage_upload(folder, Path(tmp) / "upload")
        api = HfApi(token=token, endpoint=endpoint or os.environ.get("HF_ENDPOINT"))
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            info = api.upload_folder(folder_path=str(staged), repo_id=repo_id, repo_type="dataset",
                                     commit_message=message)
        except Exception as exc:  # the hub client raises many types; the message names the cause
            raise PrefdataError(f"upload to {repo_id} failed: {type(exc).__name__}: {exc}") from None
    return str(getattr(info, "commit_url", info))
