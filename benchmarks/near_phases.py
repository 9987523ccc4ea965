"""Where curate_1m.py's time goes: CPU and wall seconds per phase of exact + near dedupe + length report,
on the same planted pairs (generated once into --data and reused).

    python benchmarks/near_phases.py --rows 200000 --data /tmp/near_200k
    python benchmarks/near_phases.py --rows 1000000 --data /tmp/near_1m

Near dedupe's phases run one after another on one thread, chunk by chunk as the stage does, so each is
timed alone (the stage itself overlaps them on threads: `near_stage` is its real wall and CPU). The last
line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from curate_1m import NGRAM, NUM_PERM, THRESHOLD, generate  # noqa: E402


class Clock:
    """Accumulates wall and CPU seconds per phase name."""

    def __init__(self) -> None:
        self.figures: dict[str, list[float]] = {}

    def __call__(self, name: str, run, *args):
        wall, cpu = time.perf_counter(), time.process_time()
        out = run(*args)
        spent = self.figures.setdefault(name, [0.0, 0.0])
        spent[0] += time.perf_counter() - wall
        spent[1] += time.process_time() - cpu
        return out


def near_phases(frame: pl.DataFrame, clock: Clock) -> np.ndarray:
    """Near dedupe's pipeline phase by phase, serially; returns the cluster ids."""
    from prefdata.curate import minhash, near_dedupe, shingles
    from prefdata.curate.text import pair_text

    n, chunk = frame.height, near_dedupe.CHUNK
    sig = np.empty((n, NUM_PERM), dtype=np.uint32)
    for start in range(0, n, chunk):
        texts = clock("text", lambda: frame.slice(start, chunk).select(pair_text()).to_series())
        data, offsets = clock("utf8", shingles._utf8, texts)
        flat, lengths = clock("tokens", shingles.tokens_from_bytes, data, offsets, "auto")
        # shingles and their signatures: one step on the numba path (no shingle arrays), two with numpy
        sig[start:start + texts.len()] = clock("combine+signatures", minhash.token_signatures, flat, lengths, NGRAM,
                                               NUM_PERM)
    bands, band_rows = minhash.lsh_params(THRESHOLD, NUM_PERM)
    pairs = clock("lsh", minhash.candidate_pairs, sig, bands, band_rows)
    def pick(rows: np.ndarray) -> pl.Series:
        return frame.select(pl.col("prompt", "chosen", "rejected").gather(rows)).select(pair_text()).to_series()

    sim = clock("verify", near_dedupe._exact, pick, pairs, NGRAM, "auto")
    return clock("components", minhash.components, n, pairs[sim >= THRESHOLD])


def run(folder: Path) -> dict:
    from prefdata.curate.config import DedupeConfig, NearDedupeConfig
    from prefdata.curate.dedupe import exact
    from prefdata.curate.length_bias import length_bias_report
    from prefdata.curate.near_dedupe import near_dedupe

    clock = Clock()
    frame = clock("read", pl.read_parquet, folder / "pairs.parquet")
    kept = clock("exact", exact, frame, DedupeConfig()).kept
    clusters = near_phases(kept, clock)
    config = NearDedupeConfig(threshold=THRESHOLD, num_perm=NUM_PERM, ngram=NGRAM)
    result = clock("near_stage", near_dedupe, kept, config)
    clock("length_bias", length_bias_report, result.kept)
    assert result.kept.height == len(np.unique(clusters)), "the phases and the stage disagree"
    phases = {name: {"wall_s": round(w, 3), "cpu_s": round(c, 3)} for name, (w, c) in clock.figures.items()}
    return {"rows": frame.height, "rows_after_exact": kept.height, "rows_kept": result.kept.height, "phases": phases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, required=True, help="folder for the generated pairs (reused)")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    if not (args.data / "pairs.parquet").exists():
        generate(args.rows, args.data, args.seed)
    from prefdata.curate import kernels

    load = os.getloadavg()[0]
    compile_s = kernels.warm_up()  # numba's compile (or cache load), apart from the phases
    figures = run(args.data)
    for name, spent in figures["phases"].items():
        print(f"{name:>12}: {spent['wall_s']:7.2f} s wall {spent['cpu_s']:7.2f} s CPU")
    print(json.dumps({**figures, "path": kernels.PATH, "compile_s": round(compile_s, 3), "load_avg": round(load, 1),
                      "cores": os.cpu_count()}))


if __name__ == "__main__":
    main()
