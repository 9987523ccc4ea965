"""The card's metadata by the Hub's conventions (huggingface_hub.DatasetCardData), so that the Hub's viewer,
search and `datasets.load_dataset` understand the data: license, language, size category, task, sources, and
one `configs` entry naming every split. `prefdata build` and `prefdata push` both write it from here, each
with the paths its own folder holds, so the two cards name the same splits."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from prefdata.spec import Spec

SFT_FILE = "sft.parquet"  # best-of-n examples (`output.sft`), the same path in a build folder and on the Hub
SPLIT_SUFFIX = "-00000-of-00001.parquet"
TAGS = ["dpo", "preference", "prefdata"]
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]


def size_category(rows: int) -> str:
    """The Hub's size_categories bucket of `rows`."""
    return next((name for bound, name in _SIZES if rows < bound), "n>1B")


def split_parts(data: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """The data per split, in the order the splits appear (a `split` column, else all of it as train)."""
    if "split" not in data.columns:
        return {"train": data}
    return {str(name): part.drop("split") for (name,), part in data.group_by("split", maintain_order=True)}


def split_file(split: str) -> str:
    """Where a split's rows go in a folder with several splits (the names `push` uploads)."""
    return f"data/{split}{SPLIT_SUFFIX}"


def check_split_folder(folder: Path) -> None:
    """A build folder's data/ holds only split files a build wrote: anything else there is someone's data,
    which a build must not replace."""
    from prefdata.errors import PrefdataError

    data = folder / "data"
    if not data.exists():
        return
    foreign = [] if data.is_dir() else [data.name]
    if data.is_dir():
        foreign = sorted(p.name for p in data.iterdir() if not (p.is_file() and p.name.endswith(SPLIT_SUFFIX)))
    if foreign:
        raise PrefdataError(f"{data}: holds {', '.join(foreign[:5])}, not split files a build wrote; write the "
                            "dataset to another folder, or move them")


def configs(paths: dict[str, str], sft: bool = False) -> list[dict]:
    """One `default` config listing every split and its files; `sft`: a second config, the best-of-n set."""
    found = [{"config_name": "default", "data_files": [{"split": s, "path": p} for s, p in paths.items()]}]
    if sft:
        found.append({"config_name": "sft", "data_files": [{"split": "train", "path": SFT_FILE}]})
    return found


def _languages(spec: Spec, data: pl.DataFrame) -> list[str] | None:
    if spec.output.card.language:
        return spec.output.card.language
    if "language" in data.columns:  # written by `filter --language`
        found = data["language"].drop_nulls().unique().sort().to_list()
        return found or None
    return None


def _source_datasets(spec: Spec) -> list[str] | None:
    if spec.output.card.source_datasets is not None:
        return spec.output.card.source_datasets or None
    from prefdata.io.raw import HUB_ID

    hub = [s.path for s in spec.sources if HUB_ID.match(s.path) and not spec.resolve(s.path).exists()]
    return [f"extended|{path}" for path in dict.fromkeys(hub)] or None


def card_data(spec: Spec, data: pl.DataFrame, paths: dict[str, str], sft: bool = False):
    """DatasetCardData for `data` whose splits lie at `paths` (split -> file pattern), and the SFT set's config
    when there is one."""
    from huggingface_hub import DatasetCardData

    card = spec.output.card
    languages = _languages(spec, data)
    return DatasetCardData(
        license=card.license, language=languages,
        multilinguality=None if not languages else ("monolingual" if len(languages) == 1 else "multilingual"),
        size_categories=[size_category(data.height)], task_categories=["text-generation"],
        source_datasets=_source_datasets(spec), pretty_name=spec.shown(card.pretty_name or spec.name),
        tags=TAGS + [t for t in card.tags if t not in TAGS], configs=configs(paths, sft))


def front_matter(card) -> str:
    return "---\n" + card.to_yaml() + "\n---\n"


def write_splits(data: pl.DataFrame, folder: Path, form: str, chat_template=None) -> dict[str, str]:
    """A build folder's split files: none for one split (data.parquet is it), else one file per split under
    data/. Returns split -> path, relative to `folder`."""
    from prefdata.io import write_table

    import shutil

    parts = split_parts(data)
    check_split_folder(folder)
    if (folder / "data").is_dir():  # an earlier run's split files
        shutil.rmtree(folder / "data")
    if list(parts) == ["train"]:
        return {"train": "data.parquet"}
    for split, part in parts.items():
        write_table(part, folder / split_file(split), form=form, chat_template=chat_template)
    return {split: split_file(split) for split in parts}
