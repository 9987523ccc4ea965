"""Collecting a lazy query on every core: Polars' streaming engine runs a column's expression over slices of
the rows side by side (the in-memory engine gives each column one core) and keeps the row order."""

from __future__ import annotations

import functools

import polars as pl


@functools.cache
def _streaming() -> bool:
    """Whether this Polars has the streaming engine (`engine="streaming"`); older ones collect in memory."""
    try:
        pl.LazyFrame({"a": [1]}).collect(engine="streaming")
    except (TypeError, ValueError):
        return False
    return True


def collect(frame: pl.LazyFrame) -> pl.DataFrame:
    return frame.collect(engine="streaming") if _streaming() else frame.collect()
