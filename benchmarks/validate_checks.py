"""What the validation catalogue costs, and why the encoding check pre-filters with Polars.

1. The whole catalogue (`validators.validate_frame`, no tokenizer) over HH-RLHF harmless-base test,
   repeated `--copies` times (23k pairs by default), median of `--rounds`.
2. The encoding check's mojibake detector: ftfy's `is_bad` on every text (the well-known way) against
   ftfy's own pattern run by Polars' regex engine over the whole column; both must flag the same rows.

    python benchmarks/validate_checks.py [--copies 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import polars as pl
from ftfy.badness import is_bad

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from prefdata.io import read_dataset  # noqa: E402
from prefdata.validators import rows  # noqa: E402
from prefdata.validators.api import validate_frame  # noqa: E402
from prefdata.validators.inputs import Inputs  # noqa: E402

HH = ROOT.parent / "shared" / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz"
DPO = ROOT.parent / "shared" / "data" / "llamafactory" / "dpo_en_demo.json"


def timed(fn, rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    base = read_dataset(HH, on_error="skip").frame
    frame = pl.concat([base] * args.copies)
    seconds, report = timed(lambda: validate_frame(frame, "pairwise"), args.rounds)
    per_check = {c.name: c.value for c in report.checks}
    print(f"catalogue: {frame.height} pairs in {seconds:.2f} s ({frame.height / seconds:,.0f} pairs/s); "
          f"exact_duplicates {per_check['exact_duplicates']}, near_duplicates {per_check['near_duplicates']}")

    texts = pl.concat([read_dataset(DPO).frame, *[base] * args.copies], how="diagonal_relaxed")
    joined = texts.select(rows.row_text(Inputs(texts, "pairwise")))[:, 0]
    plain_s, plain = timed(lambda: pl.Series([is_bad(t) for t in joined]), args.rounds)
    ours_s, ours = timed(lambda: joined.str.contains(rows.mojibake_pattern()), args.rounds)
    assert plain.to_list() == ours.to_list()
    print(f"mojibake over {len(joined)} texts: ftfy.is_bad per text {plain_s:.3f} s, ftfy's pattern in Polars "
          f"{ours_s:.3f} s ({plain_s / ours_s:.0f}x), same {int(ours.sum())} rows flagged")
    print(json.dumps({"pairs": frame.height, "catalogue_s": round(seconds, 3), "texts": len(joined),
                      "mojibake_ftfy_s": round(plain_s, 3), "mojibake_polars_s": round(ours_s, 3),
                      "flagged": int(ours.sum())}))


if __name__ == "__main__":
    main()
