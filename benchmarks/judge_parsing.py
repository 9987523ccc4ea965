"""Benchmark: read worst-case judge output, prefdata's parser against plain json_repair.

Issue 12: `'{' * 300` made json_repair raise, and `'{"' * 250` took it 67 s, inside a build. Each input
below is about 100 KB (and again cut to 32,000 characters, what the scanner reads of an answer that does
not start with its verdict). For each, the best of `--repeat` runs of `parse_verdict` and `parse_score`
(the slower of the two), the outcome, and plain `json_repair.loads` on the same text, the well-known
alternative, run in a child process and stopped after `--limit` seconds.

    python benchmarks/judge_parsing.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import time

SIZE = 100_000
CAP = 32_000


def inputs() -> dict[str, str]:
    shapes = {
        "'{' * n": lambda n: "{" * n,
        "'{\"' * n": lambda n: ('{"' * n)[:n],
        "'[' * n": lambda n: "[" * n,
        "long string": lambda n: "x" * n,
        "one long JSON string": lambda n: ('{"winner": "' + "x" * n)[:n],
        "unterminated quotes": lambda n: ('{"a": "b' * n)[:n],
        "single quotes": lambda n: ("{'" * n)[:n],
        "tiny objects": lambda n: ('{"a": 1} ' * n)[:n],
        "tiny verdicts": lambda n: ("so " + '{"winner": "A"} ' * n)[:n],
        "apostrophes in an object": lambda n: ('ok {"rationale": "' + "it's, " * n)[:n],
        "escaped quotes": lambda n: ('ok {"a": "' + '\\"' * n)[:n],
        "brackets in an object": lambda n: ('ok {"a": ' + "[]" * n)[:n],
        "leading verdict + '{' * n": lambda n: ('{"winner": "B"}' + "{" * n)[:n],
    }
    return {f"{name} ({size // 1000} KB)": make(size) for name, make in shapes.items() for size in (SIZE, CAP)}


def ours(text: str, repeat: int) -> tuple[float, str]:
    from prefdata.judge import parse_score, parse_verdict

    best, outcome = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        verdict = parse_verdict(text, scale=10)
        parse_score(text, ["helpfulness"], scale=10)
        best = min(best, time.perf_counter() - start)
        outcome = verdict.winner or (verdict.error or "").split(":")[0]
    return best, outcome


def _repair(text: str, queue) -> None:
    import json_repair

    start = time.perf_counter()
    try:
        json_repair.loads(text)
        result = "parsed"
    except Exception as exc:  # noqa: BLE001 - reporting what it raises is the point
        result = f"raised {type(exc).__name__}"
    queue.put((time.perf_counter() - start, result))


def plain_json_repair(text: str, limit: float) -> tuple[float | None, str]:
    queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=_repair, args=(text, queue))
    child.start()
    child.join(limit)
    if child.is_alive():
        child.kill()
        child.join()
        return None, f"stopped after {limit:.0f} s"
    return queue.get() if not queue.empty() else (None, f"died (exit {child.exitcode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=float, default=10.0, help="seconds plain json_repair may take per input")
    args = parser.parse_args()
    print(f"{'input':36} {'prefdata ms':>11}  {'outcome':18} {'json_repair':>12}  json_repair outcome")
    worst = 0.0
    for name, text in inputs().items():
        seconds, outcome = ours(text, args.repeat)
        worst = max(worst, seconds)
        theirs, result = plain_json_repair(text, args.limit)
        shown = f"{theirs * 1000:.1f} ms" if theirs is not None else "-"
        print(f"{name:36} {seconds * 1000:11.2f}  {outcome:18} {shown:>12}  {result}")
    print(f"slowest prefdata parse (verdict + score): {worst * 1000:.2f} ms")


if __name__ == "__main__":
    main()
