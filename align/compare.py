"""`align compare`: does a dataset variant (a curation step, another source) train a better model?

The same model, method, profile and budget (optimizer steps x batch) are trained on every variant, once per seed,
and every run is scored on one held-out set. Each variant is written as its own stamped file: its pairs as the
`train` split and the held-out set as `test`, so `align train` evaluates every run on the same pairs (its curves
and its closing evaluation against the base model) and validation checks that no held-out prompt is in the
training rows. A variant is a file (`raw=out/raw.parquet`) or a curation applied to another variant with the
spec's step names (`margin2=raw+filter:min_margin=2`, steps joined by `+`).

Figures per run: held-out reward accuracy, margin and loss (the implicit DPO-family reward), and with `--win-rate`
the judged win rate of the run's answers to the held-out prompts over the base model's (align eval's win rate:
the judge panel in both orders, answers and verdicts through the request cache). Per variant: the mean
over seeds with a 95% t-interval; per variant after the first: its difference to the first, paired by seed, with
its interval. Written: compare.json (every figure), README.md (the table and the command that reproduces it),
compare.png (held-out accuracy per step, mean over seeds). A finished run is not trained again.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from prefdata.errors import PrefdataError

RECORD = "compare.json"
FIGURES = {"accuracy": "eval_rewards/accuracies", "margin": "eval_rewards/margins", "loss": "eval_loss"}
BOUNDED = {"accuracy": (0.0, 1.0), "win_rate": (0.0, 1.0)}  # intervals clipped to the figure's range
WIN_RECORD = "win_rate.json"


@dataclass
class Variant:
    name: str
    base: str               # a file or folder, or the name of an earlier variant
    steps: list[Any]        # curation step configs applied to the base


def parse_variant(text: str, names: set[str]) -> Variant:
    """`NAME=PATH` or `NAME=BASE+step:key=value,key=value+step...` (`names`: the variants given before)."""
    from pydantic import TypeAdapter, ValidationError

    from prefdata.curate.config import StepConfig

    name, sep, rest = text.partition("=")
    if not sep or not name.strip() or not rest or not name.replace("-", "").replace("_", "").isalnum():
        raise PrefdataError(f"--variant {text!r}: write NAME=PATH or NAME=BASE+step:key=value (NAME: letters, "
                            "digits, - and _)")
    base, *parts = rest.split("+")
    if parts and base not in names and not Path(base).exists():
        raise PrefdataError(f"--variant {name}: {base!r} is neither an earlier variant nor a file (BASE+step...)")
    steps = []
    for part in parts:
        step, _, options = part.partition(":")
        fields = dict(option.split("=", 1) for option in options.split(",") if "=" in option) if options else {}
        try:
            steps.append(TypeAdapter(StepConfig).validate_python({"step": step, **fields}))
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in error["loc"][1:]) or "step"
            raise PrefdataError(f"--variant {name}: {part}: {where}: {error['msg']}") from None
    return Variant(name.strip(), base, steps)


def _prompt_keys(frame: pl.DataFrame) -> pl.Series:
    """The project's duplicate key of a prompt (normalised text of every turn)."""
    from prefdata.curate.text import key_hash

    return key_hash(frame, "prompt")


def _check_overlap(name: str, train: pl.DataFrame, held: pl.DataFrame, allow: bool) -> int:
    """Held-out prompts that are also training prompts (normalised): an error unless allowed."""
    shared = int(_prompt_keys(held).is_in(_prompt_keys(train).implode()).sum())
    if shared and not allow:
        raise PrefdataError(f"--variant {name}: {shared} of {held.height} held-out pairs share their prompt with a "
                            "training pair; remove them from the variant (or the held-out set), or pass "
                            "--allow-overlap")
    return shared


def _pairs(source: str) -> pl.DataFrame:
    from prefdata.io import read_dataset

    result = read_dataset(source, on_error="skip")
    if result.kind != "pairwise":
        raise PrefdataError(f"{source}: {result.kind} data; align compare scores pairs")
    return result.frame


def prepare(variants: list[Variant], held_out: str, out: Path, allow_overlap: bool) -> dict[str, dict]:
    """Each variant's stamped training file (train split + the held-out set as test), and its facts."""
    from prefdata.curate import run_steps
    from prefdata.fingerprint import fingerprint
    from prefdata.io import read_dataset, write_table
    from prefdata.validators.api import validate

    held = _pairs(held_out).drop("split", strict=False)
    frames: dict[str, pl.DataFrame] = {}
    facts = {}
    for variant in variants:
        frame = frames[variant.base] if variant.base in frames else _pairs(variant.base)
        frame, _, counts = run_steps(frame.drop("split", strict=False), variant.steps)
        frames[variant.name] = frame
        overlap = _check_overlap(variant.name, frame, held, allow_overlap)
        path = out / "data" / f"{variant.name}.parquet"
        both = pl.concat([frame.drop("split", strict=False).with_columns(pl.lit("train").alias("split")),
                          held.with_columns(pl.lit("test").alias("split"))], how="diagonal_relaxed")
        write_table(both, path)
        report = validate(path, stamp=True)
        failed = [f"{c.name} ({c.message})" for c in report.checks if c.severity == "error" and not c.passed]
        allowed = overlap and all(f.startswith("split_leakage ") for f in failed)  # --allow-overlap said so
        if failed and not allowed:
            raise PrefdataError(f"--variant {variant.name}: the data did not pass validation: {'; '.join(failed)}")
        facts[variant.name] = {"data": str(path), "fingerprint": fingerprint(read_dataset(path).frame),
                               "base": variant.base, "pairs": frame.height,
                               "curation": counts, "held_out_overlap": overlap, "stamp_passed": not failed}
    return facts


def interval(values: list[float], bounds: tuple[float, float] | None = None) -> dict:
    """Mean and 95% t-interval (null bounds with one value); `bounds` clip it (an accuracy lies in [0, 1])."""
    from scipy import stats

    clean = [v for v in values if v is not None and math.isfinite(v)]
    if not clean:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = sum(clean) / len(clean)
    if len(clean) < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    sem = stats.sem(clean)
    half = float(stats.t.ppf(0.975, len(clean) - 1) * sem) if sem > 0 else 0.0
    low, high = mean - half, mean + half
    if bounds:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "low": low, "high": high, "n": len(clean)}


def summarise(runs: list[dict], names: list[str]) -> dict:
    """Per variant and figure: the interval over seeds; the paired difference to the first variant."""
    by = {(r["variant"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    figures = [*FIGURES, *(["win_rate"] if any("win_rate" in r["figures"] for r in runs) else [])]
    table = {}
    for name in names:
        row = {}
        for figure in figures:
            bounds = BOUNDED.get(figure)
            row[figure] = interval([by[(name, s)]["figures"].get(figure) for s in seeds], bounds)
            if name != names[0]:
                diffs = [_minus(by[(name, s)]["figures"].get(figure), by[(names[0], s)]["figures"].get(figure))
                         for s in seeds]
                row[f"{figure}_vs_{names[0]}"] = interval(diffs, bounds and (-1.0, 1.0))
        table[name] = row
    return table


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


@dataclass
class WinRate:
    """`--win-rate`: judge each run's answers against the base model's on the held-out prompts."""
    judges: list[Any] | None = None   # JudgeSpecs; None: the embedded judge
    limit: int | None = None          # at most this many held-out prompts
    max_new_tokens: int = 128
    cache_path: str | Path | None = None

    def key(self, held_fingerprint: str) -> dict:
        from prefdata.spec import redact

        # written to compare.json: credentials in a judge's base_url are not
        judges = [redact(j.model_dump(mode="json"), {}) for j in self.judges] if self.judges else "embedded"
        return {"judges": judges, "limit": self.limit, "max_new_tokens": self.max_new_tokens,
                "held_out": held_fingerprint}


def _win_rate(run: Path, held: pl.DataFrame, options: WinRate, key: dict, cache: Any) -> dict:
    """The run's judged win rate over its base model, kept in the run folder under the options it was asked with."""
    from prefdata.align.evaluate import load_models, win_rate

    record = run / WIN_RECORD
    if record.is_file():
        kept = json.loads(record.read_text(encoding="utf-8"))
        if kept.get("key") == key:
            return kept["win_rate"]
    policy, reference, tok, config = load_models(run)
    result = win_rate(policy, reference, tok, held, options.judges, names=config["_names"], cache=cache,
                      max_new_tokens=options.max_new_tokens, limit=options.limit)
    record.write_text(json.dumps({"key": key, "win_rate": result}, indent=2) + "\n", encoding="utf-8")
    return result


def compare(config: Any, variants: list[Variant], held_out: str, out: str | Path, seeds: int,
            allow_overlap: bool = False, argv: list[str] | None = None, win: WinRate | None = None) -> dict:
    """Train every (variant, seed) from `config` (model, method, profile, steps, batch) and score them."""
    from prefdata.align.train import refuse_if_unrunnable

    if seeds < 1:
        raise PrefdataError(f"--seeds must be at least 1, not {seeds}")
    if config.method in ("reward", "kto"):
        raise PrefdataError(f"--method {config.method}: align compare scores pairs by the implicit reward of the "
                            "DPO family (dpo, ipo, orpo, simpo)")
    names = [v.name for v in variants]
    if len(set(names)) != len(names) or len(names) < 2:
        raise PrefdataError("give two variants or more, each with its own name")
    out = Path(out)
    refuse_if_unrunnable(config)
    facts = prepare(variants, held_out, out, allow_overlap)
    held = _pairs(held_out)
    cache = _open_cache(win)
    try:
        runs = _runs(config, variants, facts, out, seeds, held, win, cache)
    finally:
        if cache is not None:
            cache.close()
    for r in runs:  # paired by seed index: the seeds are config.seed + 0..n-1 for every variant
        r["seed"] = r["seed"] - config.seed
    result = {"command": shlex.join(argv or []), "model": config.model, "method": config.method,
              "profile": config.profile, "steps": config.max_steps, "batch": _batch(config.resolved()),
              "held_out": held_out, "variants": facts, "runs": runs, "table": summarise(runs, names)}
    if win is not None:
        result["win_rate"] = {"judges": win.key("")["judges"], "limit": win.limit,
                              "max_new_tokens": win.max_new_tokens,
                              "cache": cache and {"hits": cache.hits, "misses": cache.misses}}
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD).write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    plot(runs, names, out / "compare.png")
    (out / "README.md").write_text(markdown(result, names), encoding="utf-8")
    return result


def _open_cache(win: WinRate | None) -> Any:
    if win is None:
        return None
    from prefdata.backends import RequestCache
    from prefdata.backends.cache import default_path

    return RequestCache(win.cache_path or default_path())


def _runs(config: Any, variants: list[Variant], facts: dict, out: Path, seeds: int, held: pl.DataFrame,
          win: WinRate | None, cache: Any) -> list[dict]:
    """Train (or reuse) every (variant, seed) run and read its figures."""
    from prefdata.align.train import finished, train
    from prefdata.fingerprint import fingerprint

    win_key = win.key(fingerprint(held)) if win else None
    runs = []
    for variant in variants:
        for seed in range(seeds):
            run = out / "runs" / variant.name / f"seed-{seed}"
            run_config = config.model_copy(update={"data": facts[variant.name]["data"], "output": str(run),
                                                   "seed": config.seed + seed, "eval_split": None, "split": None,
                                                   # every run starts from the same model: step 0 is the same
                                                   "eval_on_start": False,
                                                   # only an overlap the user allowed fails the stamp
                                                   "skip_validation": not facts[variant.name]["stamp_passed"]})
            summary = finished(run, run_config, facts[variant.name]["fingerprint"])
            reused = summary is not None
            if not reused:
                (run / WIN_RECORD).unlink(missing_ok=True)  # judged on weights about to be replaced
                summary = train(run_config)
            scores = summary.get("held_out") or _last_eval(summary)
            entry = {"variant": variant.name, "seed": config.seed + seed, "run": str(run), "reused": reused,
                     "steps": summary["steps"], "train_rows": summary["train_rows"],
                     "epochs": summary["steps"] * _batch(run_config) / max(1, summary["train_rows"]),
                     "figures": {k: scores.get(key) for k, key in FIGURES.items()},
                     "history": summary.get("history") or [],
                     "red_flags": [f["flag"] for f in summary["red_flags"]]}
            if win is not None:
                entry["win"] = _win_rate(run, held, win, win_key, cache)
                entry["figures"]["win_rate"] = entry["win"]["win_rate"]
            runs.append(entry)
    return runs


def _last_eval(summary: dict) -> dict:
    """Without a closing evaluation (`final_eval: false`), the trainer's own evaluation at the last step."""
    last = [h for h in summary.get("history") or [] if h["step"] == summary["steps"]]
    return last[-1] if last else {}


def _batch(config: Any) -> int:
    return config.batch_size * config.grad_accum


def _cell(figure: dict) -> str:
    if figure["mean"] is None:
        return "n/a"
    if figure["low"] is None:
        return f"{figure['mean']:.4g}"
    return f"{figure['mean']:.4g} [{figure['low']:.4g}, {figure['high']:.4g}]"


def markdown(result: dict, names: list[str]) -> str:
    first = names[0]
    win = "win_rate" in result
    lines = [f"# align compare: {', '.join(names)}", "",
             f"`{result['model']}`, {result['method']} ({result['profile']}), {result['steps']} steps of "
             f"{result['batch']} pairs for every run; held-out set `{result['held_out']}` (the same pairs for every "
             "run). Means over seeds with 95% t-intervals (accuracy's clipped to its range); differences to "
             f"`{first}` are paired by seed.", ""]
    if win:
        lines += [_win_sentence(result["win_rate"]), ""]
    lines += [f"| variant | pairs | epochs | held-out accuracy | margin | loss | {'win rate | ' * win}"
              f"accuracy vs {first} | margin vs {first} | {f'win rate vs {first} | ' * win}",
              "|---|---:|---:|---|---|---|" + "---|" * (2 + 2 * win)]
    for name in names:
        row, facts = result["table"][name], result["variants"][name]
        epochs = [r["epochs"] for r in result["runs"] if r["variant"] == name]
        figures = ["accuracy", "margin", "loss", *(["win_rate"] * win)]
        versus = [_cell(row[f"{f}_vs_{first}"]) if name != first else "-"
                  for f in ("accuracy", "margin", *(["win_rate"] * win))]
        lines.append(f"| {name} | {facts['pairs']} | {sum(epochs) / len(epochs):.2f} | "
                     + " | ".join([_cell(row[f]) for f in figures] + versus) + " |")
    lines += ["", "Equal compute: a smaller variant is seen for more epochs (the `epochs` column).", "",
              "![held-out accuracy per step](compare.png)", "", "Reproduce:", "", "```bash",
              result["command"], "```", ""]
    return "\n".join(lines)


def _win_sentence(win: dict) -> str:
    judges = "the embedded judge" if win["judges"] == "embedded" else \
        ", ".join(f"`{j.get('name') or j['backend'].get('model') or j['backend']['kind']}`" for j in win["judges"])
    limit = f"the first {win['limit']} held-out prompts" if win["limit"] else "every held-out prompt"
    return (f"Win rate: each run's greedy answers ({win['max_new_tokens']} new tokens at most) to {limit}, judged "
            f"against the base model's by {judges} in both orders; a tie, or a judge that disagrees with itself "
            "across the two orders, counts half.")


def plot(runs: list[dict], names: list[str], path: Path) -> None:
    """Held-out reward accuracy per evaluation step, mean over seeds, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    for name in names:
        points = pl.DataFrame([{"step": h["step"], "accuracy": h.get("eval_rewards/accuracies")}
                               for r in runs if r["variant"] == name for h in r["history"]],
                              schema={"step": pl.Int64, "accuracy": pl.Float64})
        if points.height:
            mean = points.drop_nulls().group_by("step").agg(pl.col("accuracy").mean()).sort("step")
            ax.plot(mean["step"], mean["accuracy"], marker="o", label=name)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("held-out reward accuracy (mean over seeds)")
    ax.set_ylim(-0.02, 1.02)
    ax.axhline(0.5, color="#999999", linestyle="--", linewidth=1)
    ax.legend()
    ax.set_title("align compare: the same held-out pairs for every variant")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
