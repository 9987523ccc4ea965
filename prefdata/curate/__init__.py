"""Curation steps over pairs: each is `step(frame, config, ctx) -> StageResult(kept, dropped)`.

Modules load on first use, so that reading a spec (which imports `curate.config`) stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

def _runners() -> dict[str, str]:
    """Step name -> "module:function", from the step configs' registry (`curate.config.STEPS`)."""
    from prefdata.curate.config import STEPS as CONFIGS

    return {config.model_fields["step"].default: config.run for config in CONFIGS}


class _Steps(Mapping):
    """Step name -> function, importing each step's module on first use."""

    def __getitem__(self, name: str):
        module, _, function = _runners()[name].partition(":")
        return getattr(import_module(module if "." in module else f"prefdata.curate.{module}"), function)

    def __iter__(self):
        return iter(_runners())

    def __len__(self) -> int:
        return len(_runners())


STEPS = _Steps()


def run_step(frame, config, ctx=None):
    """Run one step config (from `prefdata.curate.config`) on a pairs table."""
    return STEPS[config.step](frame, config, ctx)


def run_steps(frame, configs, ctx=None):
    """Steps in order, outside a build (the curation commands, `align compare`'s variants): the kept rows, every
    step's dropped rows, and per step {step, in, kept}. A build runs each step as a stage of its own instead, so
    that a finished step is reused (`prefdata.flow`)."""
    import polars as pl

    from prefdata import schema

    dropped, counts = [], []
    for config in configs:
        result = run_step(frame, config, ctx)
        counts.append({"step": config.step, "in": frame.height, "kept": result.kept.height})
        frame = result.kept
        dropped.append(result.dropped)
    return frame, pl.concat(dropped, how="diagonal_relaxed") if dropped else schema.empty(schema.DROPPED), counts


__all__ = ["STEPS", "run_step", "run_steps"]
