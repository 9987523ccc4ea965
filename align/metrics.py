"""Run metrics: every trainer log entry as one JSON line, and PNG plots of loss, margins and accuracy."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl

METRICS = "metrics.jsonl"
PLOTS = {"loss": ("loss", "eval_loss"), "margins": ("rewards/margins", "eval_rewards/margins"),
         "accuracy": ("rewards/accuracies", "eval_rewards/accuracies")}


def callback(path: Path) -> Any:
    from transformers import TrainerCallback

    class MetricsCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            append(path, {"step": state.global_step, "epoch": state.epoch,
                          **{k: v for k, v in logs.items() if isinstance(v, (int, float))}})

    return MetricsCallback()


def append(path: Path, row: dict[str, Any]) -> None:
    """One row; NaN (an empty completion after truncation) is written as null, which JSON can hold."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(clean) + "\n")


def read(path: Path) -> pl.DataFrame:
    if not path.is_file() or path.stat().st_size == 0:
        return pl.DataFrame()
    return pl.read_ndjson(path, infer_schema_length=None)


def plot(path: Path, out_dir: Path) -> list[Path]:
    """One PNG per figure with the training and held-out curves that the run logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = read(path)
    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, keys in PLOTS.items():
        present = [k for k in keys if k in frame.columns]
        if not present:
            continue
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key in present:
            points = frame.select("step", key).drop_nulls()
            ax.plot(points["step"].to_list(), points[key].to_list(), marker="o", markersize=3,
                    label="held-out" if key.startswith("eval_") else "train")
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        target = out_dir / f"{name}.png"
        fig.savefig(target, dpi=100)
        plt.close(fig)
        written.append(target)
    return written
