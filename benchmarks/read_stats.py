"""Benchmark: read HH-RLHF transcripts into pairs and compute dataset statistics.

prefdata (`read_dataset` + `dataset_stats`) against the usual hand-written route: `datasets.load_dataset("json")`,
then a Python loop that splits transcripts and counts the same figures. Both see the same input, the
shared HH-RLHF test split repeated `--copies` times, and the script checks that they agree.

    python benchmarks/read_stats.py --copies 10
"""

from __future__ import annotations

import argparse
import gzip
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


def timed(fn, path: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    result = fn(path)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="Repeat the HH-RLHF split this many times.")
    args = parser.parse_args()
    lines = gzip.decompress(HH.read_bytes())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hh.jsonl"
        path.write_bytes(lines * args.copies)
        rows = lines.count(b"\n") * args.copies
        import datasets

        datasets.disable_caching()
        ours_s, ours = timed(with_prefdata, path)
        hand_s, hand = timed(by_hand, path)
    for key, value in hand.items():
        assert ours[key] == value, (key, ours[key], value)
    print(f"input: {rows} HH-RLHF rows ({args.copies} copies of the shared test split)")
    print(f"{'route':<40}{'seconds':>10}{'rows/s':>12}")
    print(f"{'prefdata read_dataset + dataset_stats':<40}{ours_s:>10.2f}{rows / ours_s:>12.0f}")
    print(f"{'datasets.load_dataset + Python loop':<40}{hand_s:>10.2f}{rows / hand_s:>12.0f}")
    print(f"both agree on: {', '.join(hand)}; prefdata also reports {len(ours) - len(hand)} more figures "
          f"and keeps every set-aside row with its reason")


if __name__ == "__main__":
    main()
