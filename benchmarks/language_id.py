"""Benchmark: language identification on the shared data, whose prompts are all English.

lingua as prefdata uses it (high accuracy, minimum relative distance 0.1: undetermined rather than a guess),
lingua's high accuracy with no minimum, its low-accuracy mode, and langdetect (a port of Google's
language-detection, the usual choice in Python; `pip install langdetect`). Figures: seconds, and how many
prompts each called English, another language, or could not tell.

    python benchmarks/language_id.py
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from prefdata.curate.language import DISTANCE
from prefdata.curate.text import user_text
from prefdata.io import read_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FILES = [SHARED / "hh-rlhf" / "harmless-base_test.jsonl.gz", SHARED / "llamafactory" / "dpo_en_demo.json"]


def lingua(distance: float | None, low: bool = False):
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    builder = builder.with_minimum_relative_distance(distance) if distance else builder
    detector = (builder.with_low_accuracy_mode() if low else builder).build()
    return lambda texts: [x.iso_code_639_1.name.lower() if x else None
                          for x in detector.detect_languages_in_parallel_of(texts)]


def langdetect_all(texts: list[str]) -> list[str | None]:
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0  # langdetect is random unless seeded

    def one(text: str) -> str | None:
        try:
            return detect(text)
        except LangDetectException:
            return None

    return [one(t) for t in texts]


def main() -> None:
    texts = [t for path in FILES for t in read_dataset(path, on_error="skip").frame
             .select(user_text().alias("t"))["t"].str.slice(0, 2000).to_list()]
    routes = {f"lingua, min distance {DISTANCE} (prefdata)": lingua(DISTANCE), "lingua, no minimum": lingua(None),
              "lingua, low accuracy": lingua(None, low=True)}
    try:
        import langdetect  # noqa: F401  the peer, when installed
        routes["langdetect"] = langdetect_all
    except ImportError:
        print("langdetect is not installed (pip install langdetect): left out")
    results = {}
    print(f"{len(texts)} English prompts (HH-RLHF harmless-base test, LLaMA-Factory dpo_en_demo)")
    print(f"{'route':<40}{'seconds':>9}{'English':>9}{'other':>7}{'unsure':>8}")
    for name, run in routes.items():
        run(texts[:10])  # models loaded before the clock
        start = time.perf_counter()
        found = Counter(run(texts))
        took = time.perf_counter() - start
        english, unsure = found.get("en", 0), found.get(None, 0)
        results[name] = {"s": round(took, 2), "en": english, "other": len(texts) - english - unsure, "unsure": unsure}
        print(f"{name:<40}{took:>9.2f}{english:>9}{len(texts) - english - unsure:>7}{unsure:>8}")
    print(json.dumps({"prompts": len(texts), **results}))


if __name__ == "__main__":
    main()
