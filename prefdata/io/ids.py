"""Stable content ids: `prompt_id` (hash of the normalised prompt) and `pair_id` (of the exact pair).

Normalisation: Unicode NFKC, runs of whitespace to one space, trimmed; roles are part of the key.
Hashes are xxh3-64 as hex digests, stable across processes and versions, unlike Polars' own `hash`: computed
in Rust by the `polars-hash` plugin when it loads and agrees with the `xxhash` package, else by `xxhash` itself.
"""

from __future__ import annotations

import functools
import unicodedata

import polars as pl
import pyarrow as pa
import xxhash

from prefdata.io.lazy import collect


# A run of whitespace other than one plain space: replacing only these gives what replacing every run does, with
# far fewer replacements in ordinary text.
_SPACE_RUN = r"\s*[\s&&[^ ]]\s*|\s{2,}"


@functools.cache
def _stable() -> str:
    """A regex class of the characters below U+3000 that NFKC leaves alone wherever they stand: their own
    normal form, no combining class, no mark that could compose with what precedes (Hangul jamo neither).
    Text made only of them is its own NFKC form, so only the rest pays for Polars' (slow) normalisation."""
    keep = [n for n in range(0x80, 0x3000) if (c := chr(n)) and unicodedata.category(c)[0] not in "MC"
            and not 0x1100 <= n < 0x1200 and unicodedata.combining(c) == 0 and unicodedata.normalize("NFKC", c) == c]
    ranges = []  # consecutive code points as first-last
    for n in keep:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return "\\x00-\\x7f" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges)


def normalise(text: pl.Expr) -> pl.Expr:
    """NFKC, runs of whitespace to one space, trimmed. Only text with a character outside `_stable` is
    normalised (the rest is null there, and nulls are skipped)."""
    unstable = pl.when(text.str.contains(f"[^{_stable()}]")).then(text)
    nfkc = pl.coalesce(unstable.str.normalize("NFKC"), text)
    return nfkc.str.replace_all(_SPACE_RUN, " ").str.strip_chars()


def conversation_key(column: str, *, normalised: bool = True) -> pl.Expr:
    """One string per row for a message-list column: role and content of each turn, separated."""
    content = pl.element().struct.field("content")
    if normalised:
        content = normalise(content)
    turn = pl.element().struct.field("role") + pl.lit("\x1f") + content
    return pl.col(column).list.eval(turn).list.join("\x1e")


def _hash_series(values: pl.Series) -> pl.Series:
    digest = xxhash.xxh3_64_hexdigest  # of the UTF-8 bytes: Polars hands them over without a str in between
    return pl.Series([None if v is None else digest(v) for v in values.cast(pl.Binary).to_list()], dtype=pl.String)


def _hex(hashes: pl.Series) -> pl.Series:
    """u64 hashes as `xxhash`'s hexdigest: the 8 bytes big-endian, in lowercase hex (no Python loop)."""
    raw = hashes.fill_null(0).to_numpy().astype(">u8")
    digest = pl.Series(pa.FixedSizeBinaryArray.from_buffers(pa.binary(8), len(raw), [None, pa.py_buffer(raw)]))
    text = digest.cast(pl.Binary).bin.encode("hex")
    return pl.select(pl.when(hashes.is_not_null()).then(text)).to_series() if hashes.null_count() else text


@functools.cache
def _native() -> bool:
    """Whether the polars-hash plugin loads here and gives `xxhash`'s digests (a plugin built for another
    Polars may fail only when called, so it is called once)."""
    try:
        import polars_hash  # noqa: F401  (registers the `nchash` namespace)

        sample = pl.Series(["", "prompt\x1fhi", "é\x1e\U0001f600"])
        got = _hex(sample.to_frame("k").select(pl.col("k").nchash.xxh3_64()).to_series())
        return got.to_list() == _hash_series(sample).to_list()
    except Exception:  # noqa: BLE001  (any failure: the xxhash loop gives the same ids)
        return False


def hash_expr(key: pl.Expr) -> pl.Expr:
    if _native():
        return key.nchash.xxh3_64().map_batches(_hex, return_dtype=pl.String)
    return key.map_batches(_hash_series, return_dtype=pl.String)


def prompt_id() -> pl.Expr:
    return hash_expr(conversation_key("prompt"))


def pair_id() -> pl.Expr:
    """Hash of the exact content: an id, not a dedupe key (curate.dedupe normalises for that)."""
    key = pl.concat_str([conversation_key(c, normalised=False) for c in ("prompt", "chosen", "rejected")],
                        separator="\x1d")
    return hash_expr(key)


def _finite(value: pl.Expr) -> pl.Expr:
    """The value where it is finite, else null: two finite scores can still overflow (1e308 - -1e308)."""
    return pl.when(value.is_finite()).then(value)


def with_ids(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Fill `prompt_id` (always recomputed), and for pairs `pair_id` (kept if given) and `margin` (null unless
    finite)."""
    columns = [prompt_id().alias("prompt_id")]
    if kind == "pairwise":
        columns += [pl.coalesce(pl.col("pair_id"), pair_id()).alias("pair_id"),
                    _finite(pl.col("chosen_score") - pl.col("rejected_score")).alias("margin")]
    return collect(frame.lazy().with_columns(columns))  # the ids side by side, each over slices of the rows
