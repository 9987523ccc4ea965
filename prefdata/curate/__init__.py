"""Curation steps over pairs: each is `step(frame, config, ctx) -> StageResult(kept, dropped)`.

Modules load on first use, so that reading a spec (which imports `curate.config`) stays light.
"""

from __future__ import annotations

from importlib import import_module

_STEPS = {  # step name -> (module, function)
    "dedupe": ("dedupe", "exact"),
    "near_dedupe": ("near_dedupe", "near_dedupe"),
    "filter": ("filters", "filter_pairs"),
    "decontaminate": ("decontaminate", "decontaminate"),
    "length_balance": ("length_bias", "balance"),
    "split": ("split", "split"),
}


class _Steps(dict):
    def __missing__(self, name: str):
        module, function = _STEPS[name]
        self[name] = getattr(import_module(f"prefdata.curate.{module}"), function)
        return self[name]


STEPS = _Steps()


def run_step(frame, config, ctx=None):
    """Run one step config (from `prefdata.curate.config`) on a pairs table."""
    return STEPS[config.step](frame, config, ctx)


def __getattr__(name: str):
    if name == "exact_dedupe":
        return STEPS["dedupe"]
    raise AttributeError(name)


__all__ = ["STEPS", "run_step", "exact_dedupe"]
