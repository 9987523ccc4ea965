"""Benchmark: how fast the review page answers, over the shared HH-RLHF set and a 100x larger copy of it.

`prefdata review` keeps a light index in the server and pages through the pairs with Polars; the usual way to
look at pairs from a notebook reads the whole file with pandas and filters it for every view. Both answer the
same requests (a page of 50 rows under a split filter, then one pair), timed over real HTTP for the server.

    python benchmarks/review_latency.py --copies 100
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from review_server import call, serving  # noqa: E402  the tests' real server in a thread

SPEC = ROOT / "examples" / "hh_curate" / "spec.yaml"
REQUESTS = 40


def _folder(base: Path, copies: int) -> Path:
    """The HH curation example's folder, its pairs repeated `copies` times (each copy with its own ids)."""
    from prefdata.build import build

    out = base / f"hh_x{copies}"
    build(SPEC, output=out, quiet=True)
    if copies > 1:
        data = pl.read_parquet(out / "data.parquet")
        many = pl.concat([data.with_columns(pl.col("pair_id") + f"-{k}") for k in range(copies)])
        many.write_parquet(out / "data.parquet")
        (out / "validation.json").unlink()  # the stamp is of the original data
    return out


def _times(fn, n: int = REQUESTS) -> dict:
    took = []
    for i in range(n):
        start = time.perf_counter()
        fn(i)
        took.append(1000 * (time.perf_counter() - start))
    return {"p50_ms": round(statistics.median(took), 2), "p95_ms": round(sorted(took)[int(0.95 * (n - 1))], 2)}


def with_server(folder: Path) -> dict:
    start = time.perf_counter()
    with serving(folder) as (base, data):
        load_s = time.perf_counter() - start
        total = data.pairs.height
        page = _times(lambda i: call(base, f"/api/rows?split=test&offset={(i * 997) % 500}&limit=50"))
        view = _times(lambda i: call(base, f"/api/row/{(i * 7919) % total}"))
    return {"pairs": total, "load_s": round(load_s, 2), "page": page, "pair": view}


def with_pandas(folder: Path) -> dict:
    """What a notebook does: read the file, filter, slice, for every look."""
    import pandas as pd

    path = folder / "data.parquet"

    def page(i: int):
        frame = pd.read_parquet(path)
        return frame[frame["split"] == "test"].iloc[(i * 997) % 500:(i * 997) % 500 + 50]

    def pair(i: int):
        frame = pd.read_parquet(path)
        return frame.iloc[(i * 7919) % len(frame)].to_dict()

    return {"page": _times(page, 10), "pair": _times(pair, 10)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100, help="The larger set: HH repeated this many times.")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for copies in (1, args.copies):
            folder = _folder(Path(tmp), copies)
            results[f"x{copies}"] = {"review": with_server(folder), "pandas": with_pandas(folder)}
    print(f"{'set':<8}{'pairs':>9}{'load s':>8}  {'page p50/p95 ms':>18}{'pair p50/p95 ms':>18}"
          f"{'pandas page p50':>17}{'pandas pair p50':>17}")
    for name, r in results.items():
        s, p = r["review"], r["pandas"]
        print(f"{name:<8}{s['pairs']:>9,}{s['load_s']:>8.1f}  {s['page']['p50_ms']:>9.1f}/{s['page']['p95_ms']:<8.1f}"
              f"{s['pair']['p50_ms']:>9.1f}/{s['pair']['p95_ms']:<8.1f}{p['page']['p50_ms']:>17.1f}"
              f"{p['pair']['p50_ms']:>17.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
