"""Benchmark: best-of-n export (`prefdata export --sft`) against the usual hand-written pandas version.

Judged data with `n` candidates per prompt paired all against all (the panel's `all_pairs`), each candidate with
a judges' score: the best answer per prompt is the one never rejected. The pandas version is what a notebook
does: a set of rejected answers per prompt, then per group the unbeaten chosen answer with the highest score.
Both must pick the same answers; the figures are wall and CPU seconds.

    python benchmarks/best_of_n.py --prompts 200000 --n 4
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import polars as pl


def pairs(prompts: int, n: int, seed: int = 0) -> pl.DataFrame:
    """All-pairs comparisons: candidate k of prompt p says "answer k to prompt p"; higher score wins."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(1, 10, size=(prompts, n)).round(3)
    rows = []
    for a, b in itertools.combinations(range(n), 2):
        win = scores[:, a] >= scores[:, b]
        rows.append(pl.DataFrame({
            "prompt_id": [f"p{i}" for i in range(prompts)],
            "chosen_k": np.where(win, a, b), "rejected_k": np.where(win, b, a),
            "chosen_score": np.where(win, scores[:, a], scores[:, b]),
            "rejected_score": np.where(win, scores[:, b], scores[:, a])}))
    frame = pl.concat(rows)
    answer = lambda k: pl.concat_list(pl.struct(pl.lit("assistant").alias("role"),  # noqa: E731
                                                pl.format("answer {} to {}", k, "prompt_id").alias("content")))
    return frame.select(
        pl.format("{}-{}-{}", "prompt_id", "chosen_k", "rejected_k").alias("pair_id"), "prompt_id",
        pl.concat_list(pl.struct(pl.lit("user").alias("role"), pl.col("prompt_id").alias("content"))).alias("prompt"),
        answer("chosen_k").alias("chosen"), answer("rejected_k").alias("rejected"), "chosen_score", "rejected_score",
        (pl.col("chosen_score") - pl.col("rejected_score")).alias("margin"), pl.lit("bench").alias("source"))


def with_pandas(frame: pl.DataFrame):
    table = frame.select("prompt_id", pl.col("chosen").list.last().struct.field("content").alias("chosen"),
                         pl.col("rejected").list.last().struct.field("content").alias("rejected"),
                         "chosen_score").to_pandas()
    lost = set(zip(table["prompt_id"], table["rejected"]))
    unbeaten = table[[key not in lost for key in zip(table["prompt_id"], table["chosen"])]]
    best = unbeaten.loc[unbeaten.groupby("prompt_id")["chosen_score"].idxmax()]
    return dict(zip(best["prompt_id"], best["chosen"]))


def with_prefdata(frame: pl.DataFrame):
    from prefdata.best_of_n import best_of_n

    kept = best_of_n(frame).kept
    return dict(kept.select("prompt_id", pl.col("messages").list.last().struct.field("content")).iter_rows())


def timed(function, frame):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(frame)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=200_000)
    parser.add_argument("--n", type=int, default=4, help="candidates per prompt (all pairs: n(n-1)/2 per prompt)")
    args = parser.parse_args()
    frame = pairs(args.prompts, args.n)
    print(f"{frame.height:,} pairs over {args.prompts:,} prompts ({args.n} candidates each)")
    ours, ours_wall, ours_cpu = timed(with_prefdata, frame)
    theirs, their_wall, their_cpu = timed(with_pandas, frame)
    assert ours == theirs, "the two picked different answers"
    print(f"prefdata best_of_n : {ours_wall:6.2f} s wall, {ours_cpu:6.2f} s CPU ({frame.height / ours_wall:,.0f} pairs/s)")
    print(f"pandas by hand     : {their_wall:6.2f} s wall, {their_cpu:6.2f} s CPU "
          f"({frame.height / their_wall:,.0f} pairs/s)")
    print(f"same {len(ours):,} best answers; prefdata {their_wall / ours_wall:.1f}x faster (wall), "
          f"{their_cpu / ours_cpu:.1f}x (CPU); it also normalises answers, ranks ties by wins and records every "
          "prompt it leaves out")


if __name__ == "__main__":
    main()
