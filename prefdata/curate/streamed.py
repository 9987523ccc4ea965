"""Curation of pairs that do not fit in memory: the rows stream through twice, only small columns stay.

Pass 1 reads the Parquet input a chunk at a time and keeps what the steps decide on: the exact-dedupe key hashes,
MinHash signatures (in a file on disk, memory-mapped), margins, group keys, and each row-wise step's verdict.
The steps then decide in order over those columns, each seeing only the rows the steps before it kept, exactly
as `run_steps` does in memory: exact dedupe, near dedupe (LSH over the mapped signatures; exact-Jaccard
verification reads the candidates' texts in one more pass), filters, split. Pass 2 reads the input again and
writes the kept rows and every dropped row, with the same stage, reason and detail as in memory, chunk by chunk.

Memory: about 100 bytes a row for the decision columns, plus the LSH band keys of the rows near dedupe sees
(8 bytes per band per row); the signatures stay on disk. The same rows are kept and dropped as in memory
(tests/test_streamed.py); only the order of the dropped rows differs (by chunk, not by step).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import polars as pl

from prefdata import schema
from prefdata.curate import minhash
from prefdata.curate.text import all_text, key_hash, pair_id_column, pair_text
from prefdata.errors import PrefdataError

CHUNK_ROWS = 1 << 16
BLOCK = 1 << 16  # signature rows read at a time
GLOBAL = ("dedupe", "near_dedupe", "split")  # decided over all rows' columns
ROW_WISE = ("filter",)  # a row's verdict depends on that row alone: decided chunk by chunk
SUPPORTED = GLOBAL + ROW_WISE


def chunks(paths: list[Path], rows: int = CHUNK_ROWS) -> Iterator[pl.DataFrame]:
    """The input in chunks of `rows`, in order (pyarrow reads a row group's batches, never the whole file). The
    input is Parquet pairs as prefdata writes them (`prefdata convert`, a build): columns are conformed to the
    pairs table, records are not checked one by one again."""
    import pyarrow.parquet as pq

    for path in paths:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield schema.conform(pl.from_arrow(batch), schema.PAIRS)  # the canonical columns, as the reader gives


def parquet_files(source: str | Path) -> list[Path]:
    path = Path(source)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.is_file() and f.suffix == ".parquet" for f in files):
        raise PrefdataError(f"{source}: streamed curation reads Parquet pairs (a .parquet file or a folder of them; "
                            f"`prefdata convert` writes them)")
    return files


@dataclass
class Columns:
    """What pass 1 keeps per row."""

    n: int = 0
    keys: dict[str, list[pl.Series]] = field(default_factory=lambda: {"prompt": [], "chosen": [], "rejected": []})
    margin: list[pl.Series] = field(default_factory=list)
    ids: list[pl.Series] = field(default_factory=list)
    groups: dict[str, list[pl.Series]] = field(default_factory=dict)
    row_wise: dict[int, Any] = field(default_factory=dict)  # step index -> would it drop the row


def curate_streamed(source: str | Path, configs: list, output: Path, dropped_to: Path, *,
                    chunk_rows: int = CHUNK_ROWS, work_dir: str | Path | None = None,
                    on_chunk=lambda rows: None) -> dict:
    """Run `configs` over the pairs in `source` (Parquet), writing the kept rows to `output` and the dropped rows
    to `dropped_to` (both Parquet); returns rows in, rows out and dropped rows by reason."""
    bad = [c.step for c in configs if c.step not in SUPPORTED]
    if bad:
        raise PrefdataError(f"streamed curation runs {', '.join(SUPPORTED)}; not {', '.join(bad)} (run it on "
                            f"data that fits in memory)")
    files = parquet_files(source)
    with tempfile.TemporaryDirectory(prefix="prefdata-streamed-", dir=work_dir) as tmp:
        sigs = {i: _SignatureFile(Path(tmp) / f"sig{i}.u32", c) for i, c in enumerate(configs)
                if c.step == "near_dedupe"}
        cols = _first_pass(files, configs, sigs, chunk_rows, on_chunk)
        decisions = _decide(files, configs, cols, sigs, chunk_rows)
        return _second_pass(files, configs, decisions, cols, output, dropped_to, chunk_rows, on_chunk)


class _SignatureFile:
    """MinHash signatures of every row, appended chunk by chunk to a file, read back memory-mapped."""

    def __init__(self, path: Path, config: Any):
        self.path, self.config, self.rows = path, config, 0
        self.handle = path.open("wb")

    def text(self) -> pl.Expr:
        return all_text("prompt") if self.config.scope == "prompt" else pair_text()

    def append(self, frame: pl.DataFrame) -> None:
        from prefdata.curate.shingles import token_hashes

        texts = frame.select(self.text()).to_series()
        sig = minhash.token_signatures(*token_hashes(texts, self.config.unit), self.config.ngram,
                                       self.config.num_perm)
        self.handle.write(np.ascontiguousarray(sig, dtype=np.uint32).tobytes())
        self.rows += frame.height

    def read(self) -> np.ndarray:
        self.handle.close()
        if self.rows == 0:
            return np.empty((0, self.config.num_perm), dtype=np.uint32)
        return np.memmap(self.path, dtype=np.uint32, mode="r", shape=(self.rows, self.config.num_perm))


def _first_pass(files, configs, sigs, chunk_rows, on_chunk) -> Columns:
    from prefdata.curate import run_step

    cols = Columns()
    splits = [c for c in configs if c.step == "split"]
    for frame in chunks(files, chunk_rows):
        for column in cols.keys:
            cols.keys[column].append(key_hash(frame, column))
        cols.margin.append(frame["margin"].cast(pl.Float64) if "margin" in frame.columns
                           else pl.repeat(None, frame.height, dtype=pl.Float64, eager=True))
        cols.ids.append(frame[pair_id_column(frame)] if pair_id_column(frame) else
                        pl.int_range(cols.n, cols.n + frame.height, eager=True).cast(pl.String))
        for config in splits:
            for column in filter(None, (config.group, config.stratify)):
                if column not in frame.columns:
                    raise PrefdataError(f"split: no column {column!r} (columns: {', '.join(frame.columns)})")
                cols.groups.setdefault(column, []).append(frame[column])
        for i, config in enumerate(configs):
            if config.step in ROW_WISE:  # the rows it would drop, whichever steps come before it
                kept = run_step(frame.with_row_index("__row"), config).kept["__row"].to_numpy()
                gone = np.ones(frame.height, dtype=bool)
                gone[kept] = False
                cols.row_wise.setdefault(i, []).append(gone)
            if i in sigs:
                sigs[i].append(frame)
        cols.n += frame.height
        on_chunk(frame.height)
    cols.row_wise = {i: np.concatenate(parts) for i, parts in cols.row_wise.items()}
    return cols


@dataclass
class Decision:
    """Per row: the index of the step that dropped it (-1: kept), its reason and detail; the split column."""

    step: np.ndarray
    reason: np.ndarray
    detail: dict[int, str] = field(default_factory=dict)
    split: np.ndarray | None = None


def _decide(files, configs, cols: Columns, sigs, chunk_rows) -> Decision:
    n = cols.n
    decision = Decision(np.full(n, -1, dtype=np.int32), np.full(n, None, dtype=object))
    margin = pl.concat(cols.margin) if cols.margin else pl.Series([], dtype=pl.Float64)
    for i, config in enumerate(configs):
        alive = np.flatnonzero(decision.step < 0)
        if config.step == "dedupe":
            _exact(config, i, alive, cols, margin, decision)
        elif config.step == "near_dedupe":
            _near(config, i, alive, sigs[i], margin, cols, files, chunk_rows, decision)
        elif config.step == "split":
            _split(config, alive, cols, decision)
        else:  # row-wise: the verdict pass 1 took, for the rows still here
            decision.step[alive[cols.row_wise[i][alive]]] = i
    return decision


def _exact(config, i, alive, cols, margin, decision) -> None:
    keys = {c: pl.concat(parts)[alive] for c, parts in cols.keys.items()} if len(alive) else {}
    if not len(alive):
        return
    frame = pl.DataFrame({**keys, "_row": alive, "margin": margin.gather(alive)})
    same = (frame["chosen"] == frame["rejected"]) if config.identical else pl.repeat(False, len(alive), eager=True)
    columns = ["prompt"] if config.level == "prompt" else ["prompt", "chosen", "rejected"]
    rest = frame.filter(~same)
    decision.step[frame.filter(same)["_row"].to_numpy()] = i
    decision.reason[frame.filter(same)["_row"].to_numpy()] = "identical_chosen_rejected"
    if config.keep == "highest_margin":
        rest = rest.sort(pl.col("margin").fill_nan(None).fill_null(float("-inf")), "_row", descending=[True, False])
    repeats = rest.filter(~pl.struct(columns).is_first_distinct())["_row"].to_numpy()
    decision.step[repeats] = i
    decision.reason[repeats] = "duplicate_prompt" if config.level == "prompt" else "exact_duplicate"


def _near(config, i, alive, sig_file, margin, cols, files, chunk_rows, decision) -> None:
    sig = sig_file.read()
    if len(alive) == 0:
        return
    bands, rows = (config.bands, config.rows) if config.bands else minhash.lsh_params(config.threshold,
                                                                                       config.num_perm)
    pairs = _candidates(sig_file, alive, bands, rows)
    if config.verify == "signature" and len(pairs):  # the candidates' signature rows only, gathered from the file
        involved = np.unique(pairs)
        local = np.searchsorted(involved, pairs)
        pairs = pairs[minhash.estimated_jaccard(np.asarray(sig[alive[involved]]), local) >= config.threshold]
    elif config.verify == "exact" and len(pairs):
        pairs = pairs[_exact_jaccard(files, chunk_rows, alive, pairs, sig_file) >= config.threshold]
    cluster = minhash.components(len(alive), pairs)
    frame = pl.DataFrame({"_cluster": cluster, "_row": alive, "margin": margin.gather(alive)})
    if config.keep == "highest_margin":
        frame = frame.sort(pl.col("margin").fill_nan(None).fill_null(float("-inf")), "_row", descending=[True, False])
    survivor = frame.unique("_cluster", keep="first").select("_cluster", pl.col("_row").alias("_kept"))
    repeats = frame.filter(~pl.col("_cluster").is_first_distinct()).join(survivor, on="_cluster")
    ids = pl.concat(cols.ids)
    rows = repeats["_row"].to_numpy()
    decision.step[rows] = i
    decision.reason[rows] = "near_duplicate"
    kept_ids = ids.gather(repeats["_kept"]).fill_null("?").to_list()
    decision.detail.update({int(r): f"{config.scope} near-duplicate of pair {k}" for r, k in zip(rows, kept_ids)})


def _candidates(sig_file: "_SignatureFile", alive: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """LSH candidate pairs (positions among `alive`): the signature file read in blocks, each block's live rows
    turned into band keys, never the whole matrix in memory."""
    width = sig_file.config.num_perm
    keys = np.empty((bands, len(alive)), dtype=np.uint64)
    nonempty = np.zeros(len(alive), dtype=bool)
    with sig_file.path.open("rb") as handle:
        done = 0
        for start in range(0, sig_file.rows, BLOCK):
            block = np.fromfile(handle, dtype=np.uint32, count=min(BLOCK, sig_file.rows - start) * width)
            block = block.reshape(-1, width)
            here = alive[(alive >= start) & (alive < start + len(block))] - start
            if len(here):
                part = block[here]
                keys[:, done:done + len(here)] = minhash.band_keys(part, bands, rows)
                nonempty[done:done + len(here)] = part[:, 0] != minhash.EMPTY
                done += len(here)
    live = np.flatnonzero(nonempty)
    return minhash.pairs_from_keys(keys if len(live) == len(alive) else keys[:, live], live, len(alive))


def _exact_jaccard(files, chunk_rows, alive, pairs, sig_file) -> np.ndarray:
    """Exact Jaccard of candidate pairs: one more pass gathers the texts of the rows that are candidates."""
    from prefdata.curate.near_dedupe import _exact as near_dedupe_exact

    involved = np.unique(pairs)  # positions among `alive`
    wanted = alive[involved]
    texts, start = [], 0
    for frame in chunks(files, chunk_rows):
        inside = wanted[(wanted >= start) & (wanted < start + frame.height)] - start
        if len(inside):
            texts.append(frame[inside.tolist()].select(sig_file.text()).to_series())
        start += frame.height
    texts = pl.concat(texts)
    local = np.searchsorted(involved, pairs)
    # in-memory near dedupe's own check, a few thousand pairs at a time: only their shingles are ever built
    return near_dedupe_exact(texts.gather, local, sig_file.config.ngram, sig_file.config.unit)


def _split(config, alive, cols, decision) -> None:
    from prefdata.curate.split import assign_split

    frame = pl.DataFrame({name: pl.concat(parts).gather(alive) for name, parts in cols.groups.items()})
    split = np.full(cols.n, None, dtype=object)
    split[alive] = assign_split(frame, config).to_numpy()
    decision.split = split


def _second_pass(files, configs, decision: Decision, cols: Columns, output: Path, dropped_to: Path, chunk_rows,
                 on_chunk) -> dict:
    import pyarrow.parquet as pq

    from prefdata.curate import run_step

    writers: dict[str, Any] = {}

    def write(name: str, path: Path, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if name not in writers:
            path.parent.mkdir(parents=True, exist_ok=True)
            writers[name] = pq.ParquetWriter(str(path), table.schema)
        writers[name].write_table(table.cast(writers[name].schema))

    start, kept_rows, reasons = 0, 0, {}
    try:
        for frame in chunks(files, chunk_rows):
            rows = np.arange(start, start + frame.height)
            marked = frame.with_columns(pl.Series("_row", rows))
            parts = []
            for i, config in enumerate(configs):
                if config.step in ROW_WISE:  # run again on the chunk: the same verdict, and any column it adds
                    rows_here = marked["_row"].to_numpy()
                    result = run_step(marked.drop("_row"), config)
                    stays = rows_here[~cols.row_wise[i][rows_here]]
                    marked, gone = result.kept.with_columns(pl.Series("_row", stays)), result.dropped
                else:
                    here = decision.step[marked["_row"].to_numpy()] == i
                    gone = _dropped(marked.filter(pl.Series(here)), config, decision)
                    marked = marked.filter(pl.Series(~here))
                    if config.step == "split":
                        marked = marked.with_columns(pl.Series("split", decision.split[marked["_row"].to_numpy()],
                                                               dtype=pl.String))
                parts.append(gone)
            dropped = pl.concat(parts, how="diagonal_relaxed")
            kept = marked.drop("_row")
            if kept.height or not writers.get("kept"):
                write("kept", output, kept)
            if dropped.height:
                write("dropped", dropped_to, dropped)
            kept_rows += kept.height
            for reason, count in dropped.group_by("reason").len().iter_rows():
                reasons[reason] = reasons.get(reason, 0) + count
            start += frame.height
            on_chunk(frame.height)
    finally:
        for writer in writers.values():
            writer.close()
    return {"rows_in": cols.n, "rows_out": kept_rows, "dropped": dict(sorted(reasons.items()))}


def _dropped(frame: pl.DataFrame, config, decision: Decision) -> pl.DataFrame:
    stage = "dedupe" if config.step == "dedupe" else config.step
    if frame.height == 0:
        return schema.empty(schema.DROPPED)
    rows = frame["_row"].to_numpy()
    reason = pl.Series(decision.reason[rows], dtype=pl.String)
    detail = pl.Series([decision.detail.get(int(r)) for r in rows], dtype=pl.String)
    return schema.dropped_rows(frame, stage, reason, id_column=pair_id_column(frame), detail=detail,
                               helpers=("_row",))


def length_bias_streamed(source: str | Path, unit: str = "chars", tokenizer: str | None = None, *,
                         chunk_rows: int = CHUNK_ROWS) -> dict:
    """`length_bias_report` of Parquet pairs read a chunk at a time: only two lengths per pair stay in memory."""
    from prefdata.curate.length_bias import lengths_report, pair_lengths

    parts = [pair_lengths(frame, unit, tokenizer) for frame in chunks(parquet_files(source), chunk_rows)]
    lengths = pl.concat(parts) if parts else pl.DataFrame(schema={"chosen": pl.Int64, "rejected": pl.Int64})
    return lengths_report(lengths, unit)
