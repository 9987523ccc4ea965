"""Curation steps over pairs: each is `step(frame, config, ctx) -> StageResult(kept, dropped)`.

Modules load on first use, so that reading a spec (which imports `curate.config`) stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module

_STEPS = {  # step name -> (module under prefdata.curate, or a dotted path; function)
    "dedupe": ("dedupe", "exact"),
    "near_dedupe": ("near_dedupe", "near_dedupe"),
    "semantic_dedupe": ("semantic_dedupe", "semantic_dedupe"),  # sentence embeddings (extra 'semantic')
    "filter": ("filters", "filter_pairs"),
    "decontaminate": ("decontaminate", "decontaminate"),
    "length_balance": ("length_bias", "balance"),
    "split": ("split", "split"),
    "pii": ("pii", "pii"),
    "human_review": ("prefdata.review.apply", "human_review"),  # a person's decisions (`prefdata review`)
}


class _Steps(Mapping):
    """Step name -> function, importing each step's module on first use."""

    def __getitem__(self, name: str):
        module, function = _STEPS[name]
        return getattr(import_module(module if "." in module else f"prefdata.curate.{module}"), function)

    def __iter__(self):
        return iter(_STEPS)

    def __len__(self) -> int:
        return len(_STEPS)


STEPS = _Steps()


def run_step(frame, config, ctx=None):
    """Run one step config (from `prefdata.curate.config`) on a pairs table."""
    return STEPS[config.step](frame, config, ctx)


__all__ = ["STEPS", "run_step"]
