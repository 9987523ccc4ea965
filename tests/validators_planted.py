"""Synthetic preference data for the validator tests: clean by construction, with problems planted on demand.

Text is drawn from a seeded vocabulary of pseudo-words, so prompts are varied (high distinct-n, no
near duplicates) and chosen is longer than rejected in about half of the pairs (no length bias).
"""

from __future__ import annotations

import json
import random
from itertools import product
from pathlib import Path

import polars as pl

from prefdata import schema
from prefdata.io import ids

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "de", "fi", "go", "hu", "ja"]
VOCAB = ["".join(p) for p in product(SYLLABLES, repeat=3)]  # 4096 pseudo-words


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(n))


def pair_records(n: int = 1200, seed: int = 0, scores: bool = False) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        record = {
            "prompt": [{"role": "user", "content": f"{words(rng, 14)}?"}],
            "chosen": [{"role": "assistant", "content": words(rng, rng.randint(10, 40))}],
            "rejected": [{"role": "assistant", "content": words(rng, rng.randint(10, 40))}],
        }
        if scores:
            record["chosen_score"], record["rejected_score"] = 8.0, float(rng.choice([5, 6, 7]))
        out.append(record)
    return out


def unpaired_records(n: int = 1200, seed: int = 0, desirable: float = 0.5) -> list[dict]:
    rng = random.Random(seed)
    return [{"prompt": [{"role": "user", "content": f"{words(rng, 14)}?"}],
             "completion": [{"role": "assistant", "content": words(rng, rng.randint(10, 40))}],
             "label": i < round(n * desirable)} for i in range(n)]


def to_frame(records: list[dict], kind: str = "pairwise") -> pl.DataFrame:
    """A canonical table built as the reader builds it, but without its record checks, so that
    records the reader would refuse (empty text, wrong roles) can be planted."""
    table = {"pairwise": schema.PAIRS, "unpaired": schema.UNPAIRED}[kind]
    given = {k: v for k, v in table.items() if any(k in r for r in records)}
    frame = pl.DataFrame(records, schema=given).with_columns(pl.lit("planted").alias("source"))
    return ids.with_ids(schema.conform(frame, table), kind)


def write_jsonl(records: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path
