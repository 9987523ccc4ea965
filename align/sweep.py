"""`align sweep`: one run per (beta, learning rate), then a table of the held-out results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from prefdata.errors import PrefdataError

RESULTS = "sweep.csv"


def run_name(beta: float, lr: float | None) -> str:
    return f"beta{beta:g}" + (f"_lr{lr:g}" if lr is not None else "")


def run_sweep(config: Any, betas: list[float], lrs: list[float | None]) -> str:
    """Train every combination under `config.output/<run>`; write `sweep.csv` and return a Markdown table."""
    from prefdata.align.train import train

    base = Path(config.output)
    rows = []
    for beta in betas:
        for lr in lrs:
            update = {"beta": beta, "output": str(base / run_name(beta, lr))}
            if lr is not None:
                update["learning_rate"] = lr
            summary = train(_validated(config, update))
            held = summary.get("held_out") or {}
            rows.append({
                "run": run_name(beta, lr), "beta": beta,
                "learning_rate": lr if lr is not None else config.resolved().learning_rate,
                "steps": summary["steps"], "train_loss": summary["train_loss"],
                "held_out_accuracy": held.get("eval_rewards/accuracies"),
                "held_out_margin": held.get("eval_rewards/margins"),
                "held_out_loss": held.get("eval_loss"),
                "red_flags": ",".join(f["flag"] for f in summary["red_flags"]),
            })
    table = pl.DataFrame(rows)
    base.mkdir(parents=True, exist_ok=True)
    table.write_csv(base / RESULTS)
    (base / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return markdown(table)


def markdown(table: pl.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else ("" if v is None else str(v))  # noqa: E731
    return "\n".join([head, rule] + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in table.iter_rows()])


def _validated(config: Any, update: dict[str, Any]) -> Any:
    """The run's config, validated like any config: a sweep value out of range is an error, not a TRL traceback."""
    from pydantic import ValidationError

    try:
        return type(config).model_validate({**config.model_dump(), **update})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PrefdataError(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}") from None
