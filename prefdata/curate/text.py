"""Text views of a pairs table that curation steps compare: final turns, whole conversations, keys."""

from __future__ import annotations

import polars as pl

from prefdata.io.ids import normalise


def final_text(column: str) -> pl.Expr:
    """The content of a message list's last turn (the answer, for `chosen` / `rejected`)."""
    return pl.col(column).list.last().struct.field("content")


def all_text(column: str) -> pl.Expr:
    """Every turn's content, one per line (roles left out: near-duplicate text is about the words)."""
    return pl.col(column).list.eval(pl.element().struct.field("content")).list.join("\n")


def pair_text() -> pl.Expr:
    """Prompt, chosen and rejected as one text."""
    return pl.concat_str([all_text(c) for c in ("prompt", "chosen", "rejected")], separator="\n")


def key_hash(column: str) -> pl.Expr:
    """A 64-bit hash of a message list after normalisation (NFKC, case, whitespace), roles included.

    Only compared within one run, so Polars' own (fast, version-dependent) hash is fine here.
    """
    turn = pl.element().struct.field("role") + pl.lit("\x1f") + normalise(pl.element().struct.field("content"))
    return pl.col(column).list.eval(turn.str.to_lowercase()).list.join("\x1e").hash(0x5EED)
