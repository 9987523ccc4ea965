"""Benchmark: read HH-RLHF transcripts into pairs and compute dataset statistics.

prefdata (`read_dataset` + `dataset_stats`) against the usual hand-written route: `datasets.load_dataset("json")`,
then a Python loop that splits transcripts and counts the same figures. Both see the same input, the
shared HH-RLHF test split repeated `--copies` times, and the script checks that they agree.

    python benchmarks/read_stats.py --copies 10
    python benchmarks/read_stats.py --copies 10 --rows 1000000   # also: read + stats of a 1M-row JSONL file

Both libraries are imported before the clock starts. Seconds are wall and CPU (the machine is shared); the last
line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

HH = Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf" / "harmless-base_test.jsonl.gz"
TURN = re.compile(r"\n\n(Human|Assistant): ?")


def with_prefdata(path: Path) -> dict:
    from prefdata.io import read_dataset
    from prefdata.stats import dataset_stats

    return dataset_stats(read_dataset(path, on_error="skip"))


def by_hand(path: Path) -> dict:
    """What people write today: load with datasets, loop in Python."""
    import datasets

    rows = datasets.load_dataset("json", data_files=str(path), split="train")
    prompts, longer, kept, keys = set(), 0, 0, set()
    for row in rows:
        sides = []
        for text in (row["chosen"], row["rejected"]):
            parts = TURN.split(text)
            sides.append([(s, b) for s, b in zip(parts[1::2], parts[2::2])])
        chosen, rejected = sides
        if not chosen[-1][1].strip() or not rejected[-1][1].strip() or chosen[:-1] != rejected[:-1]:
            continue
        kept += 1
        prompt = tuple(chosen[:-1])
        prompts.add(prompt)
        keys.add((prompt, chosen[-1][1], rejected[-1][1]))
        longer += len(chosen[-1][1]) > len(rejected[-1][1])
    return {"rows": kept, "distinct_prompts": len(prompts), "exact_duplicate_rows": kept - len(keys),
            "chosen_longer_frac": round(longer / kept, 4)}


def timed(fn, *args) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def big_file(path: Path, lines: list[bytes], rows: int) -> None:
    """`rows` HH-RLHF lines (the split repeated), written in pieces."""
    with path.open("wb") as f:
        for start in range(0, rows, len(lines)):
            f.write(b"\n".join(lines[:rows - start]) + b"\n")


def read_big(lines: list[bytes], rows: int) -> dict:
    """Read and validate, then the figures, of a `rows`-line JSONL file."""
    from prefdata.io import read_dataset
    from prefdata.stats import dataset_stats

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.jsonl"
        big_file(path, lines, rows)
        read_s, read_cpu, result = timed(lambda: read_dataset(path, on_error="skip"))
        stats_s, stats_cpu, _ = timed(dataset_stats, result)
    return {"rows": rows, "kept": result.frame.height, "read_s": round(read_s, 2), "read_cpu_s": round(read_cpu, 2),
            "stats_s": round(stats_s, 2), "stats_cpu_s": round(stats_cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="Repeat the HH-RLHF split this many times.")
    parser.add_argument("--rows", type=int, default=0, help="Also read a JSONL file of this many rows (0: no).")
    args = parser.parse_args()
    lines = gzip.decompress(HH.read_bytes())
    import datasets

    import prefdata.io.fast  # noqa: F401  (imports outside the clock, as datasets' are)
    import prefdata.stats  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hh.jsonl"
        path.write_bytes(lines * args.copies)
        rows = lines.count(b"\n") * args.copies
        datasets.disable_caching()
        datasets.disable_progress_bars()  # its bar is not a figure
        ours_s, ours_cpu, ours = timed(with_prefdata, path)
        hand_s, hand_cpu, hand = timed(by_hand, path)
    for key, value in hand.items():
        assert ours[key] == value, (key, ours[key], value)
    print(f"input: {rows} HH-RLHF rows ({args.copies} copies of the shared test split)")
    print(f"{'route':<40}{'wall s':>10}{'CPU s':>10}{'rows/s':>12}")
    print(f"{'prefdata read_dataset + dataset_stats':<40}{ours_s:>10.2f}{ours_cpu:>10.2f}{rows / ours_s:>12.0f}")
    print(f"{'datasets.load_dataset + Python loop':<40}{hand_s:>10.2f}{hand_cpu:>10.2f}{rows / hand_s:>12.0f}")
    print(f"both agree on: {', '.join(hand)}; prefdata also reports {len(ours) - len(hand)} more figures "
          f"and keeps every set-aside row with its reason")
    figures = {"rows": rows, "prefdata_s": round(ours_s, 3), "prefdata_cpu_s": round(ours_cpu, 3),
               "datasets_s": round(hand_s, 3), "datasets_cpu_s": round(hand_cpu, 3), "ratio": round(hand_s / ours_s, 2)}
    if args.rows:
        big = read_big(lines.rstrip(b"\n").split(b"\n"), args.rows)
        print(f"{args.rows} rows of JSONL: read_dataset {big['read_s']} s wall ({big['read_cpu_s']} s CPU), "
              f"dataset_stats {big['stats_s']} s ({big['stats_cpu_s']} s CPU)")
        figures["big"] = big
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
