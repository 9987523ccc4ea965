"""Curation at scale: exact + near dedupe + length-bias report on 1M synthetic pairs (~1.5 KB each),
against datasketch's MinHashLSH (what distilabel's MinHashDedup uses; with its default banding and with fair
settings, our banding, so that both reach the same recall) and rensa's RMinHashLSH (Rust, the
fastest peer; run when installed) on the same data.

    pip install datasketch rensa                      # the comparisons (not prefdata dependencies)
    python benchmarks/curate_1m.py                    # 1,000,000 pairs, datasketch on a 20,000-row sample
    python benchmarks/curate_1m.py --rows 100000 --datasketch-rows 5000

Planted cases, with ground truth: exact copies (a third with upper-cased or re-spaced text, which
normalisation must see through) and near copies (1-10 random word substitutions, so their true
Jaccard spans about 0.65-0.97 around the 0.8 threshold). Recall counts planted near copies of true
Jaccard >= 0.8 whose copy and source do not both survive; precision counts near-duplicate drops whose
survivor is truly the same planted group.

Generation and curation each run in a child process: `peak_mb` is the curation process's peak RSS
(reading the table included), `wall_s` its wall time for exact + near dedupe + length-bias report.
datasketch runs in this process on a sample of whole planted groups; its time is extrapolated per row.
The last line is JSON. `benchmarks/near_phases.py` splits near dedupe into its phases.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

PROMPT, ANSWER = 30, 95  # words per prompt and per answer: ~1.5 KB per pair
EXACT_SHARE, NEAR_SHARE = 0.03, 0.05
THRESHOLD, NUM_PERM, NGRAM = 0.8, 128, 5
STEPS = ("read", "exact", "near", "length_bias")  # the timed steps of the curation pass


def vocabulary(rng: np.random.Generator, size: int = 30000) -> tuple[pl.Series, np.ndarray]:
    """Random words and a Zipf-like sampling table (common words repeat, as in real text)."""
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = pl.Series(["".join(rng.choice(letters, n)) for n in rng.integers(2, 10, size)])
    counts = np.maximum((2_000_000 / np.arange(1, size + 1) ** 1.05).astype(np.int64), 1)
    return words, np.repeat(np.arange(size, dtype=np.int32), counts)


def plant(n: int, rng: np.random.Generator, table: np.ndarray) -> tuple[np.ndarray, pl.DataFrame]:
    """Token ids (n, words) and the truth: kind (original / exact / near), source row, edits."""
    width = PROMPT + 2 * ANSWER
    tokens = table[rng.integers(0, len(table), size=(n, width))]
    order = rng.permutation(n)
    n_exact, n_near = int(n * EXACT_SHARE), int(n * NEAR_SHARE)
    exact, near = order[:n_exact], order[n_exact:n_exact + n_near]
    pool = order[n_exact + n_near:]  # originals: sources come from two disjoint halves
    exact_src = pool[rng.integers(0, len(pool) // 2, n_exact)]
    near_src = pool[len(pool) // 2 + rng.integers(0, len(pool) - len(pool) // 2, n_near)]
    tokens[exact] = tokens[exact_src]
    tokens[near] = tokens[near_src]
    edits = rng.integers(1, 11, n_near)
    rows = np.repeat(near, edits)
    tokens[rows, rng.integers(0, width, len(rows))] = table[rng.integers(0, len(table), len(rows))]
    kind = np.zeros(n, dtype=np.int8)
    kind[exact], kind[near] = 1, 2
    source = np.arange(n)
    source[exact], source[near] = exact_src, near_src
    edit_count = np.zeros(n, dtype=np.int16)
    edit_count[near] = edits
    truth = pl.DataFrame({"row": np.arange(n), "kind": kind, "source": source, "edits": edit_count})
    return tokens, truth


def render(tokens: np.ndarray, words: pl.Series, truth: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Conversational pairs; a third of the exact copies are upper-cased, a third re-spaced."""
    frames = []
    for start in range(0, len(tokens), 100_000):
        block = tokens[start:start + 100_000]
        n = len(block)

        def text(lo: int, hi: int) -> pl.Series:
            return words.gather(block[:, lo:hi].ravel()).reshape((n, hi - lo)).arr.join(" ")

        frames.append(pl.DataFrame({"p": text(0, PROMPT), "c": text(PROMPT, PROMPT + ANSWER),
                                    "r": text(PROMPT + ANSWER, PROMPT + 2 * ANSWER)}))
    raw = pl.concat(frames).with_columns(truth["kind"], pl.Series("u", rng.integers(0, 3, len(tokens))))
    raw = raw.with_columns(
        pl.when((pl.col("kind") == 1) & (pl.col("u") == 1)).then(pl.col("c").str.to_uppercase())
        .otherwise(pl.col("c")).alias("c"),
        pl.when((pl.col("kind") == 1) & (pl.col("u") == 2)).then(pl.col("r").str.replace_all(" ", "  \n"))
        .otherwise(pl.col("r")).alias("r"))

    def turns(role: str, column: str) -> pl.Expr:
        return pl.concat_list(pl.struct(pl.lit(role).alias("role"), pl.col(column).alias("content")))

    return raw.select(
        pl.int_range(pl.len()).cast(pl.String).alias("pair_id"),
        turns("user", "p").alias("prompt"), turns("assistant", "c").alias("chosen"),
        turns("assistant", "r").alias("rejected"),
        pl.Series("margin", rng.normal(2, 1, len(tokens))),
    )


def generate(rows: int, folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    words, table = vocabulary(rng)
    tokens, truth = plant(rows, rng, table)
    render(tokens, words, truth, rng).write_parquet(folder / "pairs.parquet")
    truth.write_parquet(folder / "truth.parquet")


def curate(folder: Path) -> None:
    """The measured pass (child process): read, exact dedupe, near dedupe, length-bias report."""
    from prefdata.curate import kernels
    from prefdata.curate.config import DedupeConfig, NearDedupeConfig
    from prefdata.curate.dedupe import exact
    from prefdata.curate.length_bias import length_bias_report
    from prefdata.curate.near_dedupe import near_dedupe

    timings = {"path": kernels.PATH, "compile_s": kernels.warm_up()}  # numba's compile or cache load, not timed below
    load = os.getloadavg()[0]
    cpu, start = time.process_time(), time.perf_counter()

    def step(name: str, run):
        """Run one step, recording its wall and CPU seconds and the peak RSS so far."""
        wall0, cpu0 = time.perf_counter(), time.process_time()
        out = run()
        timings[f"{name}_s"] = time.perf_counter() - wall0
        timings[f"{name}_cpu_s"] = time.process_time() - cpu0
        timings[f"{name}_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out

    frame = step("read", lambda: pl.read_parquet(folder / "pairs.parquet"))
    first = step("exact", lambda: exact(frame, DedupeConfig()))
    second = step("near", lambda: near_dedupe(first.kept, NearDedupeConfig(threshold=THRESHOLD, num_perm=NUM_PERM,
                                                                          ngram=NGRAM)))
    report = step("length_bias", lambda: length_bias_report(second.kept))
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    dropped = pl.concat([first.dropped, second.dropped]).select("row_id", "reason", "detail")
    dropped.write_parquet(folder / "dropped.parquet")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "load_before": load, "load_after": os.getloadavg()[0],
                      "peak_mb": peak, "rows_out": second.kept.height, **timings,
                      "length_bias": report}))


def jaccard_truth(folder: Path, truth: pl.DataFrame) -> pl.DataFrame:
    """True word 5-gram Jaccard of every planted near copy and its source (exact, by set joins),
    checked against Python sets on a few hundred pairs."""
    from prefdata.curate.minhash import exact_jaccard
    from prefdata.curate.shingles import shingle_hashes
    from prefdata.curate.text import pair_text

    near = truth.filter(pl.col("kind") == 2)
    rows = np.unique(np.concatenate([near["row"].to_numpy(), near["source"].to_numpy()]))
    texts = pl.read_parquet(folder / "pairs.parquet").select(pair_text()).to_series().gather(rows)
    local = np.searchsorted(rows, np.stack([near["row"].to_numpy(), near["source"].to_numpy()], axis=1))
    ids, hashes = shingle_hashes(texts, NGRAM, "words")
    sim = exact_jaccard(local, ids, hashes)
    for i in range(0, len(local), max(1, len(local) // 300)):  # the reference: Python sets of word tuples
        a, b = (set(zip(*(t.lower().split()[k:] for k in range(NGRAM)))) for t in texts.gather(local[i]))
        assert abs(len(a & b) / len(a | b) - sim[i]) < 0.02, (i, sim[i])
    return near.with_columns(pl.Series("jaccard", sim))


def score(folder: Path, truth: pl.DataFrame, near: pl.DataFrame) -> dict:
    dropped = pl.read_parquet(folder / "dropped.parquet").with_columns(pl.col("row_id").cast(pl.Int64))
    gone = set(dropped["row_id"].to_list())
    exact_pairs = truth.filter(pl.col("kind") == 1).select("row", "source").rows()
    exact_dropped = dropped.filter(pl.col("reason") == "exact_duplicate")
    group = truth.with_columns(pl.when(pl.col("kind") > 0).then("source").otherwise("row").alias("group"))
    groups = dict(zip(group["row"].to_list(), group["group"].to_list()))
    near_drops = dropped.filter(pl.col("reason") == "near_duplicate").with_columns(
        pl.col("detail").str.extract(r"pair (\d+)$").cast(pl.Int64).alias("survivor"))
    right = sum(groups[r] == groups[s] for r, s in near_drops.select("row_id", "survivor").iter_rows())
    hard = near.filter(pl.col("jaccard") >= THRESHOLD)
    caught = sum((r in gone) or (s in gone) for r, s in hard.select("row", "source").iter_rows())
    return {
        "planted_exact": len(exact_pairs),
        "exact_recall": sum((r in gone) or (s in gone) for r, s in exact_pairs) / max(1, len(exact_pairs)),
        "exact_drops": exact_dropped.height,
        "planted_near": near.height,
        "planted_near_j_ge_threshold": hard.height,
        "recall": caught / max(1, hard.height),
        "near_drops": near_drops.height,
        "precision": right / max(1, near_drops.height),
    }


def datasketch_run(folder: Path, truth: pl.DataFrame, near: pl.DataFrame, rows: int, seed: int) -> dict:
    """distilabel's MinHashDedup way: one MinHash per text (word 5-grams), query the LSH, insert if new. Twice:
    with datasketch's default banding (chosen to balance false positives and negatives, so it misses many pairs
    just above the threshold), and with fair settings: `params` = our banding (the most selective one with recall
    >= 0.99 at the threshold), so both find the same candidates and only the speed differs."""
    from prefdata.curate.minhash import lsh_params
    from prefdata.curate.near_dedupe import near_duplicate_clusters
    from prefdata.curate.text import pair_text

    rng = np.random.default_rng(seed)
    hard = near.filter(pl.col("jaccard") >= THRESHOLD)
    pairs = hard.sample(min(rows // 4, hard.height), seed=seed)
    picked = np.unique(np.concatenate([pairs["row"].to_numpy(), pairs["source"].to_numpy(),
                                       rng.choice(truth.filter(pl.col("kind") == 0)["row"].to_numpy(),
                                                  rows - 2 * pairs.height, replace=False)]))
    texts = pl.read_parquet(folder / "pairs.parquet").select(pair_text()).to_series().gather(picked)
    found = {}
    for name, params in (("datasketch", None), ("datasketch_fair", lsh_params(THRESHOLD, NUM_PERM))):
        duplicate_of, seconds, cpu, banding = _datasketch(picked, texts, params)
        caught = sum((r in duplicate_of) or (s in duplicate_of) for r, s in pairs.select("row", "source").iter_rows())
        found.update({f"{name}_s": seconds, f"{name}_cpu_s": cpu, f"{name}_recall": caught / max(1, pairs.height),
                      f"{name}_bands_rows": banding})
    mark, ours_cpu = time.perf_counter(), time.process_time()
    ours = near_duplicate_clusters(texts, ngram=NGRAM, threshold=THRESHOLD, num_perm=NUM_PERM).to_numpy()
    ours_s, ours_cpu = time.perf_counter() - mark, time.process_time() - ours_cpu
    cluster = dict(zip(picked.tolist(), picked[ours].tolist()))
    mine = sum(cluster[r] == cluster[s] for r, s in pairs.select("row", "source").iter_rows())
    peer = rensa_run(folder, picked, pairs) if importlib.util.find_spec("rensa") else {}
    return {**peer, **found, "sample_rows": len(picked), "sample_pairs_j_ge_threshold": pairs.height,
            "ours_sample_s": ours_s, "ours_sample_cpu_s": ours_cpu, "ours_sample_recall": mine / max(1, pairs.height)}


def _datasketch(picked: np.ndarray, texts: pl.Series, params: tuple[int, int] | None) -> tuple:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=params)
    duplicate_of: dict[int, int] = {}
    start, cpu = time.perf_counter(), time.process_time()
    for row, text in zip(picked.tolist(), texts.to_list()):
        words = text.lower().split()
        shingles = {" ".join(words[k:k + NGRAM]).encode() for k in range(max(1, len(words) - NGRAM + 1))}
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(list(shingles))
        found = lsh.query(m)
        if found:
            duplicate_of[row] = found[0]
        else:
            lsh.insert(row, m)
    return duplicate_of, time.perf_counter() - start, time.process_time() - cpu, [lsh.b, lsh.r]


def rensa_run(folder: Path, picked: np.ndarray, pairs: pl.DataFrame, bands: int = 32) -> dict:
    """rensa (Rust MinHash, the fastest peer) its documented way on the same sample as datasketch: one RMinHash
    per text (word 5-grams), query its LSH, check each candidate's exact Jaccard, insert if new. 32 bands of 4
    rows: the most selective banding whose bands divide 128 with recall >= 0.99 at the threshold (ours: 21 x 6)."""
    from rensa import RMinHash, RMinHashLSH

    from prefdata.curate.text import pair_text

    texts = pl.read_parquet(folder / "pairs.parquet").select(pair_text()).to_series().gather(picked)
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=bands)
    kept: dict[int, set] = {}
    duplicate_of: dict[int, int] = {}
    start, cpu = time.perf_counter(), time.process_time()
    for row, text in zip(picked.tolist(), texts.to_list()):
        words = text.lower().split()
        shingles = {" ".join(words[k:k + NGRAM]) for k in range(max(1, len(words) - NGRAM + 1))}
        m = RMinHash(num_perm=NUM_PERM, seed=1)
        m.update(list(shingles))
        match = next((key for key in lsh.query(m)
                      if len(shingles & kept[key]) >= THRESHOLD * len(shingles | kept[key])), None)
        if match is None:
            lsh.insert(row, m)
            kept[row] = shingles
        else:
            duplicate_of[row] = match
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    found = sum((r in duplicate_of) or (s in duplicate_of) for r, s in pairs.select("row", "source").iter_rows())
    # its bulk path, as a floor: sketching ready-made shingle strings into a digest matrix (no LSH, no check)
    sets = [list(kept.get(row) or ()) for row in picked.tolist() if row in kept]
    mark, bulk_cpu = time.perf_counter(), time.process_time()
    RMinHash.digest_matrix_from_token_sets(sets, NUM_PERM, 1)
    bulk_s, bulk_cpu = time.perf_counter() - mark, time.process_time() - bulk_cpu
    return {"rensa_s": seconds, "rensa_cpu_s": cpu, "rensa_recall": found / max(1, pairs.height),
            "rensa_bulk_sketch_cpu_s": bulk_cpu * len(picked) / max(1, len(sets)), "rensa_bulk_sketch_s": bulk_s}


def child(mode: str, folder: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, __file__, f"--{mode}", str(folder), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{mode} failed:\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--datasketch-rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--curate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        return generate(args.rows, args.generate, args.seed)
    if args.curate:
        return curate(args.curate)
    with tempfile.TemporaryDirectory(prefix="curate_1m_") as tmp:
        folder = Path(tmp)
        mark = time.perf_counter()
        child("generate", folder, "--rows", str(args.rows), "--seed", str(args.seed))
        print(f"generated {args.rows:,} pairs in {time.perf_counter() - mark:.1f} s "
              f"({(folder / 'pairs.parquet').stat().st_size / 1e6:.0f} MB parquet)")
        run = json.loads(child("curate", folder).strip().splitlines()[-1])
        print(f"shingling path: {run['path']} (compile or cache load {run['compile_s']:.2f} s, before the pass)")
        print(f"curation pass: {run['wall_s']:.1f} s wall, {run['cpu_s']:.1f} s CPU (load average "
              f"{run['load_before']:.1f} -> {run['load_after']:.1f} on {os.cpu_count()} cores), "
              f"peak RSS {run['peak_mb']:.0f} MB, "
              f"{run['rows_out']:,} rows kept")
        for name in STEPS:
            print(f"  {name}: {run[name + '_s']:.1f} s wall, {run[name + '_cpu_s']:.1f} s CPU, "
                  f"peak RSS so far {run[name + '_peak_mb']:.0f} MB")
        print(f"length bias: {json.dumps(run['length_bias'])}")
        truth = pl.read_parquet(folder / "truth.parquet")
        near = jaccard_truth(folder, truth)
        figures = score(folder, truth, near)
        print(f"planted: {json.dumps(figures)}")
        ds = datasketch_run(folder, truth, near, min(args.datasketch_rows, args.rows), args.seed)
        per_row = ds["datasketch_s"] / ds["sample_rows"]
        ds["datasketch_extrapolated_s"] = per_row * args.rows
        print(f"datasketch MinHashLSH, fair settings (params {ds['datasketch_fair_bands_rows']}: our bands x rows), "
              f"on {ds['sample_rows']:,} rows: {ds['datasketch_fair_s']:.1f} s wall, "
              f"{ds['datasketch_fair_cpu_s']:.1f} s CPU (recall {ds['datasketch_fair_recall']:.4f}); with its default "
              f"params {ds['datasketch_bands_rows']}: {ds['datasketch_s']:.1f} s wall, {ds['datasketch_cpu_s']:.1f} s "
              f"CPU (recall {ds['datasketch_recall']:.4f})")
        for key in ("s", "cpu_s"):  # the speed-ups below are against the fair settings
            ds[f"datasketch_{key}"] = ds[f"datasketch_fair_{key}"]
        print(f"datasketch MinHashLSH (fair) on {ds['sample_rows']:,} rows: {ds['datasketch_s']:.1f} s "
              f"(recall {ds['datasketch_fair_recall']:.4f}), extrapolated to {args.rows:,} rows: "
              f"{ds['datasketch_extrapolated_s']:.0f} s; ours on the same sample: {ds['ours_sample_s']:.2f} s "
              f"({ds['ours_sample_cpu_s']:.2f} s CPU vs datasketch {ds['datasketch_cpu_s']:.1f} s CPU) "
              f"(recall {ds['ours_sample_recall']:.4f})")
        if "rensa_s" in ds:
            print(f"rensa RMinHashLSH (exact check) on the same rows: {ds['rensa_s']:.1f} s, {ds['rensa_cpu_s']:.1f} s "
                  f"CPU (recall {ds['rensa_recall']:.4f}), extrapolated to {args.rows:,} rows: "
                  f"{ds['rensa_cpu_s'] / ds['sample_rows'] * args.rows:.0f} s CPU; its bulk sketching alone of "
                  f"ready-made shingle strings: "
                  f"{ds['rensa_bulk_sketch_cpu_s'] / ds['sample_rows'] * args.rows:.0f} s CPU "
                  f"extrapolated (ours, whole near dedupe: {run['near_cpu_s']:.0f} s CPU)")
        speedup = ds["datasketch_extrapolated_s"] / run["near_s"]
        # CPU seconds are what a loaded machine cannot inflate much: datasketch uses one thread, we use all
        speedup_cpu = ds["datasketch_cpu_s"] / ds["sample_rows"] * args.rows / run["near_cpu_s"]
        print(f"near dedupe on {args.rows:,} rows: {run['near_s']:.1f} s wall, {run['near_cpu_s']:.1f} s CPU; "
              f"datasketch extrapolated: {ds['datasketch_extrapolated_s']:.0f} s wall, "
              f"{ds['datasketch_cpu_s'] / ds['sample_rows'] * args.rows:.0f} s CPU; speed-up {speedup:.1f}x wall, "
              f"{speedup_cpu:.1f}x CPU")
        print(json.dumps({"rows": args.rows, "path": run["path"], "compile_s": round(run["compile_s"], 2),
                          "wall_s": round(run["wall_s"], 2), "cpu_s": round(run["cpu_s"], 2),
                          "load_avg": round(run["load_before"], 1), "peak_mb": round(run["peak_mb"]),
                          "recall": round(figures["recall"], 4), "precision": round(figures["precision"], 4),
                          "exact_recall": round(figures["exact_recall"], 4),
                          "near_dedupe_s": round(run["near_s"], 2),
                          "phases": {name: {"wall_s": round(run[f"{name}_s"], 2),
                                            "cpu_s": round(run[f"{name}_cpu_s"], 2)} for name in STEPS},
                          "datasketch_recall": round(ds["datasketch_recall"], 4),
                          "datasketch_fair_recall": round(ds["datasketch_fair_recall"], 4),
                          "datasketch_params": {"default": ds["datasketch_bands_rows"],
                                                "fair": ds["datasketch_fair_bands_rows"]},
                          "speedup_vs_datasketch": round(speedup, 1),
                          "speedup_vs_datasketch_cpu": round(speedup_cpu, 1),
                          **({"rensa_recall": round(ds["rensa_recall"], 4),
                              "rensa_extrapolated_cpu_s": round(ds["rensa_cpu_s"] / ds["sample_rows"] * args.rows, 1),
                              "speedup_vs_rensa_cpu": round(ds["rensa_cpu_s"] / ds["sample_rows"] * args.rows
                                                            / run["near_cpu_s"], 1),
                              "rensa_bulk_sketch_extrapolated_cpu_s": round(
                                  ds["rensa_bulk_sketch_cpu_s"] / ds["sample_rows"] * args.rows, 1)}
                             if "rensa_s" in ds else {})}))


if __name__ == "__main__":
    main()
