"""Content fingerprint of a table: independent of the file encoding, sensitive to every value."""

from __future__ import annotations

import hashlib

import polars as pl


def fingerprint(frame: pl.DataFrame) -> str:
    """sha256 of the table's rows as JSON Lines, in order, with its column names."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(frame.columns).encode())
    digest.update(frame.write_ndjson().encode())
    return "sha256:" + digest.hexdigest()
