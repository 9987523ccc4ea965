"""Benchmark: judges against people. On pairs that humans labelled (chosen beat rejected), how often does each
judge agree, how often does it give the same verdict in both orders, and how often is its answer unreadable?

    python benchmarks/judge_accuracy.py --data ../shared/data/hh-rlhf/harmless-base_test.jsonl.gz --limit 100 \
        [--reward-model out/rm] [--cache out/judge_accuracy.sqlite]

Judges: (a) the embedded SmolLM2 generative judge, pairwise in both orders (constrained decoding when the
grammar engine is installed); (b) with `--reward-model FOLDER`, a reward model (`kind: reward_model`, e.g. one
trained by `align train --method reward` on a disjoint part of the same data, see `--write-train`); (c) the
panel of all of them (mean normalised score; also weighted by each verdict's confidence). The pairs run through
prefdata's own judge stage as gold items (chosen shown as `a` in one order and `b` in the other), so the figures
are the ones a build's card gives.

`--data` takes any pairwise file in a supported format; `--limit` pairs are drawn at random (`--seed`).
`--write-train FILE` writes the remaining pairs whose prompts are not among the drawn ones (prompt-disjoint),
for training a reward model that is then evaluated here. Every rate has a Wilson 95% interval
(prefdata.rates). The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import polars as pl


def draw(path: str, limit: int, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(`limit` pairs at random, the other pairs whose prompt differs from every drawn one)."""
    from prefdata.curate.text import key_hash
    from prefdata.io.reader import read_dataset

    result = read_dataset(path, on_error="skip")  # a malformed record is left out, and counted below
    if result.kind != "pairwise":
        sys.exit(f"{path}: judge accuracy needs preference pairs, found {result.kind}")
    if result.dropped.height:
        print(f"{path}: {result.dropped.height} records left out: {result.drop_counts()}", file=sys.stderr)
    frame = result.frame.sample(fraction=1.0, shuffle=True, seed=seed)
    frame = frame.with_columns(key_hash(frame, "prompt").alias("_prompt_key"))
    drawn = frame.head(limit)
    rest = frame.slice(limit).filter(~pl.col("_prompt_key").is_in(drawn["_prompt_key"].implode()))
    return drawn.drop("_prompt_key"), rest.drop("_prompt_key")


def judges(args) -> list:
    from prefdata.spec import JudgeSpec

    panel = [JudgeSpec.model_validate({"name": "smol-pairwise", "kind": "pairwise", "swap": True,
                                       "max_tokens": args.max_tokens, "retries": args.retries,
                                       "backend": {"kind": "embedded", "batch_size": args.batch_size}})]
    if args.reward_model:
        panel.append(JudgeSpec.model_validate({"name": "reward-model", "kind": "reward_model",
                                               "backend": {"kind": "transformers", "model": args.reward_model,
                                                           "batch_size": args.batch_size}}))
    return panel


def panel_accuracy(judgments: pl.DataFrame, names: list[str], weight: str = "equal") -> dict:
    from prefdata.judge.panel import decide, resolve, with_probabilities
    from prefdata.rates import rate

    resolved = resolve(with_probabilities(judgments.filter(pl.col("judge").is_in(names))))
    decided, _ = decide(resolved, "mean_score", {}, weight=weight)
    right = decided.filter(pl.col("decision") == "a").height
    return rate(right, decided.height).as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/hh-rlhf/harmless-base_test.jsonl.gz")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-model", help="a sequence-classification folder to judge as `reward_model`")
    parser.add_argument("--write-train", help="write the prompt-disjoint rest of the data here (for training)")
    parser.add_argument("--cache", default="out/judge_accuracy.sqlite", help="request cache (answers kept)")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--retries", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    from prefdata.backends.cache import RequestCache
    from prefdata.context import Context
    from prefdata.judge.report import judge_report
    from prefdata.judge.stage import judge

    drawn, rest = draw(args.data, args.limit, args.seed)
    if args.write_train:
        from prefdata.io.writers import write_table

        write_table(rest, args.write_train)
        print(f"wrote {rest.height} prompt-disjoint pairs to {args.write_train}", file=sys.stderr)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    ctx = Context(cache=RequestCache(args.cache))
    panel = judges(args)
    empty = pl.DataFrame(schema={"prompt_id": pl.String, "candidate_id": pl.String, "response": pl.String})
    no_prompts = pl.DataFrame(schema={"prompt_id": pl.String, "prompt": drawn.schema["prompt"]})
    started = time.perf_counter()
    judged = judge(empty, panel, ctx, prompts=no_prompts, gold=drawn).kept
    seconds = time.perf_counter() - started
    report = judge_report(judged)["judges"]
    names = list(report)
    figures = {"data": args.data, "pairs": drawn.height, "seed": args.seed, "seconds": round(seconds, 1),
               "judges": {name: {"accuracy": f["gold_accuracy"], "position_consistency": f["position_consistency"],
                                 "unreadable": f["parse_failure_rate"], "confidence": f["confidence"]}
                          for name, f in report.items()}}
    if len(names) > 1:
        figures["panel"] = {"judges": names, "method": "mean_score", "accuracy": panel_accuracy(judged, names),
                            "accuracy_confidence_weighted": panel_accuracy(judged, names, "confidence")}
    show = lambda r: "n/a" if r["value"] is None else (
        f"{r['value']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}] (n={r['n']})")
    print(f"{drawn.height} human-labelled pairs from {args.data} (seed {args.seed}), judged in {seconds:.0f} s")
    for name, f in figures["judges"].items():
        print(f"{name:>16}: accuracy {show(f['accuracy'])}; position consistency "
              f"{show(f['position_consistency'])}; unreadable {show(f['unreadable'])}; mean confidence "
              f"{'n/a' if not f['confidence'] else round(f['confidence']['mean'], 3)}")
    if "panel" in figures:
        print(f"{'panel':>16}: accuracy {show(figures['panel']['accuracy'])}; weighted by confidence "
              f"{show(figures['panel']['accuracy_confidence_weighted'])}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
