"""Curation steps over pairs: each returns kept and dropped rows with reasons."""

from prefdata.curate.dedupe import exact as exact_dedupe

STEPS = {"dedupe": exact_dedupe}

__all__ = ["STEPS", "exact_dedupe"]
