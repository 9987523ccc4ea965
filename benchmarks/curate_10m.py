"""Curation larger than memory: exact + near dedupe and the length-bias report on 10M synthetic pairs (~1.5 KB
each, about 15 GB of text) with `prefdata.curate.streamed`, within a 16 GB peak, and the same run on the first
1M for the scaling.

    python benchmarks/curate_10m.py                       # 10,000,000 pairs in 10 Parquet parts
    python benchmarks/curate_10m.py --rows 2000000        # a smaller run

The pairs are curate_1m's (the same generator and planted exact and near copies), made 1M at a time in child
processes and written as parts of one folder; copies and their sources share a part. Curation runs in a child
process: `peak_mb` is its peak RSS. Recall and precision are scored as in curate_1m (true word 5-gram Jaccard of
each planted near copy and its source, part by part). In memory the same pass needs about 2.8 GB per million
pairs (curate_1m), so 10M would need about 28 GB: more than this machine has. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
import curate_1m  # noqa: E402  the generator, the truth and the scoring

PART = 1_000_000


def make_part(folder: Path, index: int, rows: int, seed: int) -> None:
    """One part (child process): curate_1m's pairs with global pair ids, and its truth with global rows."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        curate_1m.generate(rows, Path(tmp), seed + index)
        offset = index * PART
        pairs = pl.read_parquet(Path(tmp) / "pairs.parquet")
        pairs = pairs.with_columns((pl.col("pair_id").cast(pl.Int64) + offset).cast(pl.String))
        pairs.write_parquet(folder / "pairs" / f"part-{index:03d}.parquet", row_group_size=100_000)
        truth = pl.read_parquet(Path(tmp) / "truth.parquet")
        truth.with_columns(pl.col("row") + offset, pl.col("source") + offset).write_parquet(
            folder / "truth" / f"part-{index:03d}.parquet")


def curate(folder: Path, parts: int, out: Path) -> None:
    """The measured pass (child process): streamed exact + near dedupe, then the length-bias report of the kept
    rows from their lengths, read a chunk at a time."""
    from prefdata.curate import kernels
    from prefdata.curate.config import DedupeConfig, NearDedupeConfig
    from prefdata.curate.length_bias import lengths_report, pair_lengths
    from prefdata.curate.streamed import chunks, curate_streamed

    compile_s = kernels.warm_up()
    files = sorted((folder / "pairs").glob("*.parquet"))[:parts]
    (out / "pairs").mkdir(parents=True, exist_ok=True)
    for f in files:  # the parts this run reads, as one folder
        (out / "pairs" / f.name).symlink_to(f)
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    steps = [DedupeConfig(), NearDedupeConfig(threshold=curate_1m.THRESHOLD, num_perm=curate_1m.NUM_PERM,
                                              ngram=curate_1m.NGRAM)]
    figures = curate_streamed(out / "pairs", steps, out / "kept.parquet", out / "dropped.parquet",
                              work_dir=out)
    curated = time.perf_counter() - wall
    lengths = pl.concat([pair_lengths(frame) for frame in chunks([out / "kept.parquet"])])
    report = lengths_report(lengths)
    print(json.dumps({**figures, "wall_s": time.perf_counter() - wall, "curate_s": curated,
                      "cpu_s": time.process_time() - cpu, "compile_s": compile_s, "load_before": load,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "length_bias": report}))


def score(folder: Path, out: Path, parts: int) -> dict:
    """curate_1m's recall and precision, part by part (planted copies and their sources share a part)."""
    dropped = pl.read_parquet(out / "dropped.parquet", columns=["row_id", "reason", "detail"])
    found = {"planted_near_j_ge_threshold": 0, "caught": 0, "near_drops": 0, "right": 0, "planted_exact": 0,
             "exact_caught": 0}
    for index in range(parts):
        with tempfile.TemporaryDirectory(dir=out) as tmp:
            tmp = Path(tmp)
            (tmp / "pairs.parquet").symlink_to(folder / "pairs" / f"part-{index:03d}.parquet")
            truth = pl.read_parquet(folder / "truth" / f"part-{index:03d}.parquet")
            lo, hi = index * PART, index * PART + truth.height
            ids = pl.col("row_id").cast(pl.Int64)
            dropped.filter(ids.is_between(lo, hi - 1)).write_parquet(tmp / "dropped.parquet")
            local = truth.with_columns(pl.col("row") - lo, pl.col("source") - lo)
            near = curate_1m.jaccard_truth(tmp, local)
            shifted = pl.read_parquet(tmp / "dropped.parquet").with_columns(
                (ids - lo).cast(pl.String).alias("row_id"),
                pl.col("detail").str.replace(r"pair (\d+)$", "pair -").alias("_d"),
                (pl.col("detail").str.extract(r"pair (\d+)$").cast(pl.Int64) - lo).cast(pl.String).alias("_s"))
            shifted.with_columns(pl.when(pl.col("_s").is_not_null())
                                 .then(pl.col("_d").str.replace("-$", "") + pl.col("_s"))
                                 .otherwise(pl.col("detail")).alias("detail")).drop("_d", "_s").write_parquet(
                tmp / "dropped.parquet")
            part = curate_1m.score(tmp, local, near)
        found["planted_near_j_ge_threshold"] += part["planted_near_j_ge_threshold"]
        found["caught"] += round(part["recall"] * part["planted_near_j_ge_threshold"])
        found["near_drops"] += part["near_drops"]
        found["right"] += round(part["precision"] * part["near_drops"])
        found["planted_exact"] += part["planted_exact"]
        found["exact_caught"] += round(part["exact_recall"] * part["planted_exact"])
    return {"recall": found["caught"] / max(1, found["planted_near_j_ge_threshold"]),
            "precision": found["right"] / max(1, found["near_drops"]),
            "exact_recall": found["exact_caught"] / max(1, found["planted_exact"]), **found}


def child(*args: str) -> str:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{args[0]} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def run(folder: Path, parts: int, name: str) -> dict:
    out = folder / name
    out.mkdir()
    found = json.loads(child("--curate", str(folder), "--parts", str(parts), "--out", str(out)).splitlines()[-1])
    found.update(score(folder, out, parts))
    print(f"{found['rows_in']:,} pairs: {found['curate_s']:.0f} s curation ({found['wall_s']:.0f} s with the "
          f"length report), {found['cpu_s']:.0f} s CPU, peak RSS {found['peak_mb']:,.0f} MB, {found['rows_out']:,} "
          f"kept, dropped {found['dropped']}; near recall {found['recall']:.4f}, precision {found['precision']:.4f}, "
          f"exact recall {found['exact_recall']:.4f}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--make-part", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--curate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_part:
        return make_part(args.make_part, args.index, min(PART, args.rows - args.index * PART), args.seed)
    if args.curate:
        return curate(args.curate, args.parts, args.out)
    parts = -(-args.rows // PART)
    with tempfile.TemporaryDirectory(prefix="curate_10m_") as tmp:
        folder = Path(tmp)
        (folder / "pairs").mkdir()
        (folder / "truth").mkdir()
        mark = time.perf_counter()
        for index in range(parts):
            child("--make-part", str(folder), "--index", str(index), "--rows", str(args.rows), "--seed",
                  str(args.seed))
        size = sum(f.stat().st_size for f in (folder / "pairs").iterdir())
        print(f"generated {args.rows:,} pairs in {parts} parts in {time.perf_counter() - mark:.0f} s "
              f"({size / 1e9:.1f} GB Parquet)", flush=True)
        small = run(folder, 1, "one_part")
        big = run(folder, parts, "all") if parts > 1 else small
        scaling = big["curate_s"] / small["curate_s"] / (big["rows_in"] / small["rows_in"])
        print(f"scaling {small['rows_in']:,} -> {big['rows_in']:,} pairs: {big['curate_s'] / small['curate_s']:.1f}x "
              f"the time for {big['rows_in'] / small['rows_in']:.0f}x the rows ({scaling:.2f} per row), peak RSS "
              f"{small['peak_mb']:,.0f} -> {big['peak_mb']:,.0f} MB")
        print(json.dumps({"rows": big["rows_in"], "curate_s": round(big["curate_s"], 1),
                          "wall_s": round(big["wall_s"], 1), "cpu_s": round(big["cpu_s"], 1),
                          "peak_mb": round(big["peak_mb"]), "recall": round(big["recall"], 4),
                          "precision": round(big["precision"], 4), "exact_recall": round(big["exact_recall"], 4),
                          "rows_out": big["rows_out"], "dropped": big["dropped"],
                          "one_part": {"rows": small["rows_in"], "curate_s": round(small["curate_s"], 1),
                                       "peak_mb": round(small["peak_mb"]), "recall": round(small["recall"], 4)},
                          "time_per_row_vs_one_part": round(scaling, 2), "load_avg": round(big["load_before"], 1)}))


if __name__ == "__main__":
    main()
