"""Output folders: a command writes into a folder that holds only what it writes itself.

A folder holding another dataset's files is refused before anything runs (a `save_to_disk` folder's
`data-00000-of-00001.arrow` left beside a build's `data.parquet` would be read by one tool and not by
another), and files an earlier run of the same command wrote but this run does not (a `scores.parquet`
from a spec that had a pointwise judge) are removed, and named.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

from prefdata.errors import PrefdataError

BUILD = ("data.parquet", "dropped.parquet", "manifest.json", "validation.json", "README.md", "candidates.parquet",
         "judgments.parquet", "scores.parquet", "margins.png", "length_diff.png", "length_bias.png", ".run",
         "validation_docs", "review.jsonl", "sft.parquet", "sft.dropped.parquet",
         "data")  # data/: one file per split, where the data has several
SAVE_TO_DISK = ("data-*.arrow", "dataset_info.json", "state.json", "validation.json", "validation_docs")
SHOWN = 5


def _owned(name: str, owned: tuple[str, ...]) -> bool:
    return any(fnmatch(name, pattern) for pattern in owned)


def claim(folder: Path, owned: tuple[str, ...], command: str) -> None:
    """Refuse `folder` when it holds anything `command` does not write (another dataset, a user's files)."""
    if not folder.is_dir():
        if folder.exists():
            raise PrefdataError(f"{folder}: exists and is not a folder; {command} writes a folder there")
        return
    foreign = sorted(p.name for p in folder.iterdir() if not _owned(p.name, owned))
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else "")
        raise PrefdataError(f"{folder}: holds files {command} does not write ({shown}), another dataset perhaps; "
                            f"write to another folder, or remove them")


def remove_stale(folder: Path, owned: tuple[str, ...], written: set[str], keep: tuple[str, ...] = ()) -> list[str]:
    """Remove what an earlier run left in `folder` that this run did not write; returns their names."""
    import shutil

    stale = sorted(p.name for p in folder.iterdir()
                   if _owned(p.name, owned) and p.name not in written and p.name not in keep)
    for name in stale:
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return stale
