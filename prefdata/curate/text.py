"""Text views of a pairs table that curation steps compare: final turns, whole conversations, keys."""

from __future__ import annotations

import polars as pl


def final_text(column: str) -> pl.Expr:
    """The content of a message list's last turn (the answer, for `chosen` / `rejected`)."""
    return pl.col(column).list.last().struct.field("content")


def all_text(column: str) -> pl.Expr:
    """Every turn's content, one per line (roles left out: near-duplicate text is about the words)."""
    return pl.col(column).list.eval(pl.element().struct.field("content")).list.join("\n")


def user_text(column: str = "prompt") -> pl.Expr:
    """A conversation's user turns, one per line: what a prompt asks (system text is the same everywhere), the
    view language identification and semantic dedupe judge a prompt by."""
    user = pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
    return pl.col(column).list.eval(user).list.join("\n")


def pair_text() -> pl.Expr:
    """Prompt, chosen and rejected as one text."""
    return pl.concat_str([all_text(c) for c in ("prompt", "chosen", "rejected")], separator="\n")


def normalised(texts: pl.Series) -> pl.Series:
    """NFKC, runs of whitespace to one space, trimmed, lower-cased: `prefdata.io.ids.normalise` plus
    case, but NFKC and the whitespace regex run only on the texts that need them (both are slow)."""
    texts = texts.fill_null("")
    unusual = texts.str.len_bytes() != texts.str.len_chars()  # non-ASCII: NFKC may change it
    spaced = unusual | texts.str.starts_with(" ") | texts.str.ends_with(" ")
    for space in ("  ", "\n", "\t", "\r", "\x0b", "\x0c"):
        spaced = spaced | texts.str.contains(space, literal=True)
    where = spaced.arg_true()
    if where.len():
        subset = texts.gather(where)
        odd = unusual.gather(where).arg_true()  # NFKC on these only (a when/then would run it on every text)
        if odd.len():
            subset = subset.scatter(odd, subset.gather(odd).str.normalize("NFKC"))
        texts = texts.scatter(where, subset.str.replace_all(r"\s+", " ").str.strip_chars())
    return texts.str.to_lowercase()


def key_hash(frame: pl.DataFrame, column: str) -> pl.Series:
    """A 64-bit hash per row of a message-list column after normalisation (NFKC, case, whitespace),
    roles included. Only compared within one run, so Polars' own (fast, version-dependent) hash is fine."""
    turns = (frame.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), pl.col(column))
             .explode(column, empty_as_null=True, keep_nulls=True).unnest(column))
    hashed = pl.struct(pl.col("role"), normalised(turns["content"]).alias("content")).hash(0x5EED)
    per_turn = turns.select("_row", hashed.alias("h"))
    return per_turn.group_by("_row", maintain_order=True).agg("h").select(pl.col("h").hash(0x5EED)).to_series()


def pair_id_column(frame: pl.DataFrame) -> str | None:
    """The id dropped rows carry (`row_id`): `pair_id` where the table has one."""
    return "pair_id" if "pair_id" in frame.columns else None
