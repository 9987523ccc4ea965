"""Benchmark: the cost of judge confidence, in cache bytes and in reading time.

A verdict's cached answer with and without token log-probabilities (the fake server's 3 alternatives per
token, and 20 as OpenAI sends for `top_logprobs: 20`), and the time `prefdata.judge.confidence.pairwise`
takes on a typical verdict and on hostile lists (each the mean of 5 runs).

    python benchmarks/judge_confidence.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_llm import logprobs_of  # noqa: E402

from prefdata.backends.base import ChatResponse  # noqa: E402
from prefdata.backends.openai_backend import read_logprobs  # noqa: E402
from prefdata.judge import confidence  # noqa: E402


def timed(label: str, tokens, *args) -> None:
    start = time.perf_counter()
    for _ in range(5):
        confidence.pairwise(tokens, *args)
    print(f"{label}: {(time.perf_counter() - start) / 5 * 1000:.1f} ms")


def main() -> None:
    text = json.dumps({"winner": "A", "score_a": 7, "score_b": 4,
                       "rationale": "A answers the question directly and correctly, B does not."})
    tokens = read_logprobs(logprobs_of(text, 20))
    wide = [[t, lp, {f"{t}{i}": lp - i for i in range(20)}] for t, lp, _ in tokens]
    sizes = [len(ChatResponse(text, logprobs=lp).to_json()) for lp in (None, tokens, wide)]
    print(f"cached verdict ({len(tokens)} tokens): {sizes[0]} B without log-probabilities, {sizes[1]} B with 3 "
          f"alternatives per token, {sizes[2]} B with 20")
    timed("typical verdict", tokens, "", "a")
    timed("100,000 tokens x 20 alternatives", [['{"', -0.1, {f"x{i}": -1.0 for i in range(20)}]] * 100_000, "", "a")
    timed("4,096 tokens x 100,000 alternatives", [["a", -0.1, {f"x{i}": -1.0 for i in range(100_000)}]] * 4096,
          "", "a")
    timed("32,000-character unterminated string", [['{"winner": "A", "rationale": "' + '\\"' * 16000, -0.1, {}]],
          "", "a")


if __name__ == "__main__":
    main()
