"""Benchmark: semantic dedupe on the shared data (HH-RLHF harmless-base test and LLaMA-Factory's dpo_en_demo,
stacked), against MinHash near dedupe and sentence-transformers' own tools.

1. Embedding the prompts' user turns with all-MiniLM-L6-v2, each route in a fresh process (its own peak RSS):
   prefdata's (transformers, mean pooling, bfloat16 weights where the CPU has native bfloat16), the same in
   float32, and sentence-transformers' `SentenceTransformer.encode`: texts/s, wall and CPU seconds, peak RSS,
   and the lowest cosine between a route's embedding of a text and sentence-transformers' (same model?).
2. The `semantic_dedupe` step (scope prompt, default threshold): rows dropped, and for each dropped row whether
   MinHash near dedupe (default settings, scope prompt) puts it in one cluster with the row it duplicates;
   examples of what MinHash misses.
3. The same neighbour search against `util.paraphrase_mining_embeddings` (pairs at or above the threshold) and
   `util.community_detection` (how many rows its communities would drop), on the same embeddings.
4. The exact blocked search alone on planted random vectors (`--search-rows`), to compare with embedding time.

    python benchmarks/semantic_dedupe.py [--threshold 0.9] [--pair] [--search-rows 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np
import polars as pl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = [SHARED / "hh-rlhf" / "harmless-base_test.jsonl.gz", SHARED / "llamafactory" / "dpo_en_demo.json"]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pairs() -> pl.DataFrame:
    from prefdata.io import read_dataset

    return pl.concat([read_dataset(path, on_error="skip").frame for path in FILES], how="diagonal_relaxed")


def prompts(frame: pl.DataFrame) -> list[str]:
    from prefdata.curate.text import user_text

    return frame.select(user_text().alias("t"))["t"].to_list()


def _route(name: str) -> dict:
    """One embedding route, run in a fresh process: model load and embedding timed apart."""
    from prefdata.curate.semantic_dedupe import _encoder, embed, require

    texts = prompts(pairs())
    start, cpu = time.perf_counter(), cpu_s()
    if name == "sentence-transformers encode":
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(require()), device="cpu")
        loaded, loaded_cpu = time.perf_counter() - start, cpu_s() - cpu
        start, cpu = time.perf_counter(), cpu_s()
        vectors = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    else:
        dtype = "auto" if name.startswith("prefdata") and "float32" not in name else "float32"
        _encoder(require(), dtype)
        loaded, loaded_cpu = time.perf_counter() - start, cpu_s() - cpu
        start, cpu = time.perf_counter(), cpu_s()
        vectors = embed(pl.Series(texts), dtype=dtype)
    took, took_cpu = time.perf_counter() - start, cpu_s() - cpu
    return {"route": name, "texts": len(texts), "load_s": round(loaded, 1), "load_cpu_s": round(loaded_cpu, 1),
            "embed_s": round(took, 1), "embed_cpu_s": round(took_cpu, 1), "texts_per_s": round(len(texts) / took, 1),
            "texts_per_cpu_s": round(len(texts) / took_cpu, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "vectors": vectors}


def in_process(function, *args):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def _step(threshold: float, scope: str) -> dict:
    from prefdata.curate.config import SemanticDedupeConfig
    from prefdata.curate.semantic_dedupe import semantic_dedupe

    frame = pairs()
    start, cpu = time.perf_counter(), cpu_s()
    result = semantic_dedupe(frame, SemanticDedupeConfig(threshold=threshold, scope=scope))
    return {"s": round(time.perf_counter() - start, 1), "cpu_s": round(cpu_s() - cpu, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "dropped": result.dropped.select("row_id", "detail").to_dicts()}


def short(text: str, width: int = 90) -> str:
    text = " / ".join(text.split("\n"))
    return text if len(text) <= width else text[:width - 3] + "..."


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--pair", action="store_true", help="also run scope pair (three embeddings per row)")
    parser.add_argument("--search-rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3, help="embedding runs per route")
    args = parser.parse_args()
    from prefdata.curate.config import NearDedupeConfig
    from prefdata.curate.near_dedupe import near_dedupe
    from prefdata.curate.semantic_dedupe import similar_pairs

    frame = pairs()
    texts = prompts(frame)
    print(f"{frame.height} pairs (HH-RLHF harmless-base test + LLaMA-Factory dpo_en_demo), "
          f"prompts' user turns: {np.mean([len(t) for t in texts]):.0f} characters on average")
    figures: dict = {"rows": frame.height}

    names = ("sentence-transformers encode", "prefdata float32", "prefdata (dtype auto)")
    print(f"\n1. embedding all-MiniLM-L6-v2, each route in a fresh process, {args.rounds} rounds in turn (the order "
          f"reversed every other round); each route's fastest round, as other work on the machine slows any one")
    print(f"{'route':<32}{'load s':>7}{'texts/s':>9}{'wall s':>8}{'CPU s':>7}{'texts/CPU s':>12}{'RSS MB':>8}"
          f"{'min cos':>9}  all rounds: wall s / CPU s")
    runs: dict[str, list] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            runs[name].append(in_process(_route, name))
    routes = [min(runs[name], key=lambda run: run["embed_s"]) for name in names]
    reference = routes[0]["vectors"]
    for route in routes:
        vectors = route.pop("vectors")
        route["min_cosine_to_st"] = round(float(np.einsum("ij,ij->i", vectors, reference).min()), 6)
        route["pairs_at_threshold"] = len(similar_pairs(vectors, args.threshold)[0])
        route["rounds"] = [(run["embed_s"], run["embed_cpu_s"]) for run in runs[route["route"]]]
        print(f"{route['route']:<32}{route['load_s']:>7}{route['texts_per_s']:>9}{route['embed_s']:>8}"
              f"{route['embed_cpu_s']:>7}{route['texts_per_cpu_s']:>12}{route['peak_rss_mb']:>8}"
              f"{route['min_cosine_to_st']:>9.5f}  {route['rounds']}")
    print(f"each route's embeddings give {routes[0]['pairs_at_threshold']}, {routes[1]['pairs_at_threshold']} and "
          f"{routes[2]['pairs_at_threshold']} pairs at cosine >= {args.threshold}")
    for run in (r for name in names for r in runs[name]):
        run.pop("vectors", None)
    figures["embedding"] = routes

    print(f"\n2. the semantic_dedupe step, scope prompt, threshold {args.threshold}, against MinHash")
    step = in_process(_step, args.threshold, "prompt")
    ids = frame["pair_id"].to_list()
    row = {pair_id: n for n, pair_id in enumerate(ids)}
    start, cpu = time.perf_counter(), cpu_s()
    minhash = near_dedupe(frame, NearDedupeConfig(scope="prompt"))
    minhash_s, minhash_cpu = time.perf_counter() - start, cpu_s() - cpu
    from prefdata.curate.near_dedupe import near_duplicate_clusters
    from prefdata.curate.text import all_text

    clusters = near_duplicate_clusters(frame.select(all_text("prompt"))["prompt"], unit="auto").to_list()
    found = [(row[d["row_id"]], row[d["detail"].split(" of pair ")[1].split(" ")[0]],
              float(d["detail"].rsplit("cosine ", 1)[1].rstrip(")"))) for d in step["dropped"]]
    both = [f for f in found if clusters[f[0]] == clusters[f[1]]]
    missed = sorted((f for f in found if clusters[f[0]] != clusters[f[1]]), key=lambda f: f[2])
    semantic_rows = {d["row_id"] for d in step["dropped"]}
    only_minhash = [r for r in minhash.dropped["row_id"].to_list() if r not in semantic_rows]
    print(f"semantic dedupe: {len(found)} of {frame.height} rows dropped in {step['s']} s ({step['cpu_s']} CPU s, "
          f"peak RSS {step['peak_rss_mb']} MB); MinHash near dedupe (prompt scope, Jaccard 0.8): "
          f"{minhash.dropped.height} dropped in {minhash_s:.2f} s ({minhash_cpu:.2f} CPU s)")
    print(f"of the {len(found)} semantic duplicates MinHash also finds {len(both)} and misses {len(missed)}; "
          f"MinHash drops {len(only_minhash)} rows semantic dedupe keeps")
    prefix = sum(texts[a].startswith(texts[b]) or texts[b].startswith(texts[a]) for a, b, _ in missed)
    print(f"of those MinHash misses, {prefix} are one conversation's user turns continued in the other "
          f"(a longer sample of the same talk); the rest are the same request in other words, e.g.:")
    reworded = [f for f in missed if not (texts[f[0]].startswith(texts[f[1]]) or texts[f[1]].startswith(texts[f[0]]))]
    for a, b, cosine in reworded[:: max(1, len(reworded) // 8)][:8]:
        print(f"  {cosine:.3f}  {short(texts[b])!r}\n         {short(texts[a])!r}")
    figures["step"] = {"dropped": len(found), "s": step["s"], "cpu_s": step["cpu_s"],
                       "peak_rss_mb": step["peak_rss_mb"], "minhash_dropped": minhash.dropped.height,
                       "minhash_also": len(both), "minhash_misses": len(missed), "misses_continued": prefix,
                       "minhash_only": len(only_minhash)}

    print("\n3. the same search with sentence-transformers' util, on the same embeddings (sentence-transformers')")
    from sentence_transformers import util

    import torch

    start, cpu = time.perf_counter(), cpu_s()
    ours = similar_pairs(reference, args.threshold)
    ours_s, ours_cpu = time.perf_counter() - start, cpu_s() - cpu
    start, cpu = time.perf_counter(), cpu_s()
    mined = util.paraphrase_mining_embeddings(torch.from_numpy(reference), top_k=100, max_pairs=10**7)
    mined_s, mined_cpu = time.perf_counter() - start, cpu_s() - cpu
    mined = {(min(i, j), max(i, j)) for score, i, j in mined if score >= args.threshold}
    same = mined == set(zip(ours[0].tolist(), ours[1].tolist()))
    start, cpu = time.perf_counter(), cpu_s()
    communities = util.community_detection(torch.from_numpy(reference), threshold=args.threshold, min_community_size=2)
    community_s, community_cpu = time.perf_counter() - start, cpu_s() - cpu
    print(f"prefdata similar_pairs: {len(ours[0])} pairs in {ours_s:.2f} s ({ours_cpu:.2f} CPU s); "
          f"paraphrase_mining_embeddings: {len(mined)} pairs >= {args.threshold} in {mined_s:.2f} s "
          f"({mined_cpu:.2f} CPU s), same pairs: {same}")
    print(f"community_detection: {len(communities)} communities, {sum(len(c) - 1 for c in communities)} rows "
          f"it would drop, in {community_s:.2f} s ({community_cpu:.2f} CPU s); prefdata's greedy first-kept "
          f"drops a row only when a kept row is at or above the threshold with it")
    figures["util"] = {"pairs": len(ours[0]), "paraphrase_mining_same_pairs": same,
                       "community_drops": sum(len(c) - 1 for c in communities)}

    if args.pair:
        print(f"\n   scope pair (prompt, chosen and rejected each >= {args.threshold})")
        step = in_process(_step, args.threshold, "pair")
        print(f"   {len(step['dropped'])} rows dropped in {step['s']} s ({step['cpu_s']} CPU s, "
              f"peak RSS {step['peak_rss_mb']} MB)")
        figures["pair"] = {"dropped": len(step["dropped"]), "s": step["s"], "cpu_s": step["cpu_s"]}

    n = args.search_rows
    print(f"\n4. the exact search alone, {n:,} random unit vectors (384 dimensions, 1% planted near copies)")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, 384), dtype=np.float32)
    copies = rng.choice(n, n // 100, replace=False)
    vectors[copies] = vectors[(copies + 1) % n] + 0.2 * rng.standard_normal((len(copies), 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start, cpu = time.perf_counter(), cpu_s()
    found_pairs = similar_pairs(vectors, args.threshold)
    search_s, search_cpu = time.perf_counter() - start, cpu_s() - cpu
    rate = routes[-1]["texts_per_cpu_s"]
    print(f"{len(found_pairs[0])} pairs found in {search_s:.1f} s ({search_cpu:.1f} CPU s); embedding {n:,} such "
          f"prompts at {rate} texts per CPU second: {n / rate:.0f} CPU s ({n / rate / search_cpu:.0f}x the search)")
    figures["search"] = {"rows": n, "pairs": len(found_pairs[0]), "s": round(search_s, 1),
                         "cpu_s": round(search_cpu, 1), "embed_cpu_s_estimate": round(n / rate)}
    try:
        from usearch.index import Index  # an HNSW index, the approximate peer, when installed
    except ImportError:
        print("usearch is not installed (pip install usearch): the approximate index left out")
    else:
        start, cpu = time.perf_counter(), cpu_s()
        index = Index(ndim=vectors.shape[1], metric="cos", dtype="f32")
        index.add(np.arange(n), vectors)
        matches = index.search(vectors, 20)
        rows, keys = np.repeat(np.arange(n), matches.keys.shape[1]), matches.keys.ravel().astype(np.int64)
        close = (1 - matches.distances.ravel() >= args.threshold) & (keys != rows) & (keys >= 0) & (keys < n)
        approximate = {(min(a, b), max(a, b)) for a, b in zip(rows[close].tolist(), keys[close].tolist())}
        exact = set(zip(found_pairs[0].tolist(), found_pairs[1].tolist()))
        index_s, index_cpu = time.perf_counter() - start, cpu_s() - cpu
        print(f"usearch HNSW (build + 20 nearest per row): {len(approximate)} pairs in {index_s:.1f} s "
              f"({index_cpu:.1f} CPU s), recall {len(approximate & exact) / max(1, len(exact)):.3f}")
        figures["search"]["usearch_cpu_s"] = round(index_cpu, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
