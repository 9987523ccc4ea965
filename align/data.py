"""The data a run trains on: read, stamp checked, held-out split, shaped for the method's trainer."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from prefdata.errors import PrefdataError

log = logging.getLogger("align")

COLUMNS = {"pairwise": ["prompt", "chosen", "rejected"], "unpaired": ["prompt", "completion", "label"]}
HELD_OUT = ("test", "validation", "eval", "held_out")
SPLIT = "split"


@dataclass
class RunData:
    train: pl.DataFrame
    held_out: pl.DataFrame
    kind: str                                 # pairwise | unpaired
    fingerprint: str
    stamp: dict[str, Any] | None              # the validation stamp, when there is one
    stamp_state: str                          # valid | missing | stale | failed | unreadable | skipped-*
    stamp_message: str
    source: str
    rows_in: int
    notes: list[str] = field(default_factory=list)
    dropped: pl.DataFrame | None = None       # rows left out, each with its reason (prefdata's DROPPED table)


def _hub_stamp(data: str, frame: pl.DataFrame) -> tuple[str, str, dict | None]:
    """A Hub dataset's stamp travels as `validation.json` in its repository; its files cannot be hashed
    here, so the content fingerprint of what was read stands in for them."""
    from prefdata.fingerprint import fingerprint

    try:
        from huggingface_hub import hf_hub_download

        stamp = json.loads(Path(hf_hub_download(data, "validation.json", repo_type="dataset")).read_text())
    except Exception as exc:  # not found, offline, unreadable: all mean "no usable stamp"
        return "missing", f"{data}: no validation.json in the Hub dataset ({type(exc).__name__})", None
    if stamp.get("fingerprint") != fingerprint(frame):
        return "stale", f"{data}: content fingerprint differs from the stamp's", stamp
    if not stamp.get("passed"):
        return "failed", f"{data}: validation failed", stamp
    return "valid", f"{data}: validated {stamp.get('validated_at')}", stamp


def check_data_stamp(data: str, frame: pl.DataFrame, skip: bool) -> tuple[str, str, dict | None]:
    from prefdata.validators.stamp import check_stamp

    if Path(data).exists():
        status = check_stamp(data, frame)
        state, message, stamp = status.state, status.message, status.stamp
    else:
        state, message, stamp = _hub_stamp(data, frame)
    if state == "valid":
        return state, message, stamp
    if not skip:
        raise PrefdataError(f"{message}; align trains only on validated data (or pass --skip-validation)")
    log.warning("training on data without a passing validation stamp (%s): %s", state, message)
    return f"skipped-{state}", message, stamp


def hold_out(frame: pl.DataFrame, fraction: float, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split by prompt, not by row: every row of a prompt lands on the same side, so none leaks. The data's own
    test split when it has one; else `prefdata split`'s rule (the same prompts for the same fraction and seed)."""
    from prefdata.curate.config import SplitConfig
    from prefdata.curate.split import assign_split

    if SPLIT in frame.columns and frame[SPLIT].is_in(HELD_OUT).any():
        test = pl.col(SPLIT).is_in(HELD_OUT)
        return frame.filter(~test), frame.filter(test)
    if fraction == 0 or frame.height == 0:
        return frame, frame.clear()
    test = assign_split(frame, SplitConfig(test_size=fraction, seed=seed)) == "test"
    train, held = frame.filter(~test), frame.filter(test)
    if held.height == 0 and frame.height > 1:  # tiny data: still hold out one prompt
        first = frame["prompt_id"][0]
        train, held = frame.filter(pl.col("prompt_id") != first), frame.filter(pl.col("prompt_id") == first)
    return train, held


def load_run_data(config: Any) -> RunData:
    from prefdata.fingerprint import fingerprint
    from prefdata.io import read_dataset

    result = read_dataset(config.data, on_error="skip", split=config.split)
    state, message, stamp = check_data_stamp(config.data, result.frame, config.skip_validation)
    notes = []
    if result.dropped.height:
        notes.append(f"{result.dropped.height} of {result.rows_in} records unreadable and left out")
    if result.kind not in COLUMNS:
        raise PrefdataError(f"{config.data}: {result.kind} data cannot train a preference method (need pairs "
                            "or labelled completions)")
    from prefdata.align.methods import METHODS

    method_kind = METHODS[config.method].data
    if method_kind == "pairwise" and result.kind == "unpaired":
        raise PrefdataError(f"{config.data}: unpaired (KTO) data; --method {config.method} needs pairs "
                            "(use --method kto)")
    frame = result.frame  # with curation's `split` column when the data has one
    dropped = [result.dropped]
    if config.eval_split is not None:
        held_result = read_dataset(config.data, on_error="skip", split=config.eval_split)
        held, train = held_result.frame, frame
        dropped.append(held_result.dropped)
    else:
        train, held = hold_out(frame, config.eval_fraction, config.seed)
    if train.height == 0:
        raise PrefdataError(f"{config.data}: no training rows left after holding out the test split")
    return RunData(train, held, result.kind, fingerprint(result.frame), stamp, state, message, str(config.data),
                   result.rows_in, notes, pl.concat(dropped, how="vertical_relaxed"))


def to_dataset(frame: pl.DataFrame, kind: str, method: str, seed: int) -> Any:
    """A `datasets.Dataset` in the trainer's format. KTO on pairs: TRL's own unpairing, then a shuffle,
    or sequential batches come out all desirable, then all undesirable."""
    from datasets import Dataset

    dataset = Dataset.from_polars(frame.select(COLUMNS[kind]))
    if method == "kto" and kind == "pairwise":
        from trl.data_utils import unpair_preference_dataset

        dataset = unpair_preference_dataset(dataset).shuffle(seed=seed)
    return dataset


def kto_balance(dataset: Any, desirable: float, undesirable: float) -> str | None:
    """KTO paper: keep w_D * n_D / (w_U * n_U) within [1, 4/3]."""
    labels = dataset["label"]
    n_d = int(sum(labels))
    n_u = len(labels) - n_d
    if not n_d or not n_u:
        return f"KTO data has only {'desirable' if n_d else 'undesirable'} completions"
    ratio = desirable * n_d / (undesirable * n_u)
    if not 1 <= ratio <= 4 / 3:
        return (f"KTO balance w_D*n_D/(w_U*n_U) = {ratio:.2f} ({n_d} desirable, {n_u} undesirable) is outside "
                "the paper's [1, 4/3]; adjust desirable_weight / undesirable_weight")
    return None


def drop_long_prompts(data: Any, tok: Any, max_length: int) -> tuple[Any, str | None]:
    """Rows whose prompt alone fills max_length are left out of training and evaluation, and said so."""
    from prefdata.align.tokenizer import prompt_fits

    return _leave_out(data, lambda frame: prompt_fits(frame, tok, max_length), "prompt_fills_max_length",
                      f"the prompt alone fills max_length {max_length} (no room for the completion)")


def drop_long_pairs(data: Any, tok: Any, max_length: int) -> tuple[Any, str | None]:
    """TRL's RewardTrainer silently filters out (does not truncate) pairs longer than max_length: they are
    left out here first, each on record, so the counts say what the reward model was trained on."""
    from prefdata.align.tokenizer import pair_fits

    return _leave_out(data, lambda frame: pair_fits(frame, tok, max_length), "longer_than_max_length",
                      f"prompt + chosen or prompt + rejected is longer than max_length {max_length} (TRL's "
                      "RewardTrainer does not truncate)")


def _leave_out(data: Any, fits_of: Any, reason: str, detail: str) -> tuple[Any, str | None]:
    """Rows of train and held_out where `fits_of(frame)` is false move to `data.dropped` with `reason`;
    (data, the warning that counts them, or None when none left)."""
    from prefdata.schema import dropped_rows

    counts, left_out = [], []
    for name in ("train", "held_out"):
        frame = getattr(data, name)
        fits = fits_of(frame)
        counts.append(frame.height - int(fits.sum()))
        left_out.append(dropped_rows(frame.filter(~fits), "align", reason,
                                     id_column="pair_id" if "pair_id" in frame.columns else None,
                                     detail=f"{name}: {detail}"))
        setattr(data, name, frame.filter(fits))
    data.dropped = pl.concat([d for d in (data.dropped, *left_out) if d is not None], how="vertical_relaxed")
    if not sum(counts):
        return data, None
    if data.train.height == 0:
        raise PrefdataError(f"every training row was left out: {detail}; raise max_length")
    return data, f"left out {counts[0]} training and {counts[1]} held-out rows: {detail}"
