"""The dataset card: README.md with Hugging Face metadata, provenance and counts."""

from __future__ import annotations

import re

import polars as pl
from prefdata.rates import FEW, describe, rate
from prefdata.report import hub
from prefdata.spec import Spec
from prefdata.stats import compute


def _counts_table(counts: dict) -> str:
    lines = ["| stage | in | kept | dropped (reason: rows) |", "|---|---:|---:|---|"]
    for stage, c in counts.items():
        reasons = ", ".join(f"{r}: {n}" for r, n in c["dropped"].items()) or "none"
        if c.get("kept_without_confidence"):
            reasons += f"; {c['kept_without_confidence']} kept without a confidence to test (no token probabilities)"
        lines.append(f"| {stage} | {c['in']} | {c['kept']} | {reasons} |")
    return "\n".join(lines)


def _pii(counts: dict) -> str:
    """What each pii step found, per entity type, and what it did with it."""
    done = {"redact": "each find replaced by `<ENTITY>`", "drop": "pairs holding any removed, reason `pii`",
            "flag": "pairs kept as they are"}
    steps = [(stage, c["pii"]) for stage, c in counts.items() if c.get("pii")]
    if not steps:
        return ""
    lines = ["## PII", ""]
    for stage, f in steps:
        found = ", ".join(f"{name} {e['spans']} in {e['pairs']} pairs" for name, e in f["entities"].items())
        lines.append(f"- **{stage}** ({f['action']}: {done[f['action']]}): {found or 'nothing found'}"
                     + (f"; {f['unscanned']} pairs could not be scanned" if f.get("unscanned") else "") + ".")
    lines += ["", "Found by presidio-analyzer's pattern recognizers (e-mail, phone, credit card, IBAN, IP); names "
                  "are not looked for. Each pair's `pii` column lists its finds (entity, field, turn, offsets; never "
                  "the text): in `data.parquet`, or in the dropped records for `drop`."]
    return "\n".join(lines) + "\n\n"


def _confidence(figure: dict | None, backend: str | None) -> str:
    """A judge's mean confidence and share of unsure verdicts, or why there is none."""
    if not figure:
        if backend == "anthropic":
            return "not available from the anthropic backend (no token probabilities)"
        return "not available (backend gives no token probabilities)"
    return (f"mean {figure['mean']:.2f}; below {figure['below']}: "
            f"{describe(figure['low'], noun='verdicts with a confidence')}")


def _judges_table(judging: dict, backends: dict[str, str] | None = None) -> str:
    """Per-judge figures, each with the count it rests on and its 95% interval, and agreement between judges."""
    judges = judging.get("judges", {})
    if not judges:
        return "No judge figures."
    lines = ["| judge | verdicts | parse failures | position consistency | gold accuracy | confidence | flagged |",
             "|---|---:|---|---|---|---|---|"]
    for name, f in judges.items():
        consistency = (describe(f["position_consistency"], noun="swapped comparisons")
                       if f["position_consistency"]["n"] else "not applicable (no order shown: pointwise or "
                                                                   "reward model; or not swapped)")
        gold = describe(f["gold_accuracy"], noun="gold items") if f["gold_accuracy"]["n"] else "no gold items"
        sure = _confidence(f.get("confidence"), (backends or {}).get(name))
        lines.append(f"| {name} | {f['verdicts']} | {describe(f['parse_failure_rate'], noun='verdicts')} | "
                     f"{consistency} | {gold} | {sure} | {'yes' if f['flagged'] else 'no'} |")
    lines += [f"\n{name}: inputs cut to max_length (their last tokens scored): "
              f"{describe(f['truncated'], noun='inputs')}"
              for name, f in judges.items() if f.get("truncated")]
    lines += ["", "Confidence is the probability a judge gave its own verdict (`confidence` in `judgments.parquet`): "
                  "read from its token log-probabilities; for a reward model, the Bradley-Terry probability "
                  "sigmoid(reward gap)."]
    lines += ["", f"Rates are shown with the items they rest on and a Wilson 95% interval; *few* marks a figure "
                  f"resting on fewer than {FEW} items, too few to tell a good judge from a poor one."]
    lines += ["", _agreement(judging.get("agreement", {}))]
    if judging.get("dropped_judges"):
        lines += ["", f"Left out of the panel by the gold check: {', '.join(judging['dropped_judges'])}."]
    return "\n".join(lines)


def _judge_backends(spec: Spec) -> dict[str, str]:
    from prefdata.spec import judge_name

    return {judge_name(j): j.backend.kind for j in spec.judges} if spec.generate is not None else {}


def _agreement(matrix: dict) -> str:
    """One row per pair of judges; a judge's agreement with itself across orders is its position consistency."""
    pairs = [(a, b) for i, a in enumerate(matrix) for b in list(matrix)[i + 1:] if b in matrix[a]]
    if not pairs:
        return "Agreement between judges: needs two or more judges; this panel has one."
    lines = ["Agreement between judges, over the comparisons both decided:", "",
             "| judges | Cohen's kappa | raw agreement |", "|---|---|---|"]
    for a, b in pairs:
        cell = matrix[a][b]
        kappa = (describe(cell["kappa"], percent=False, noun="items") if cell["kappa"]["value"] is not None else
                 f"undefined ({cell['items']} items: a judge gave one label only, or none)")
        lines.append(f"| {a} / {b} | {kappa} | "
                     f"{describe(cell['raw'], noun='items')} |")
    return "\n".join(lines)


def _pair_agreement(data: pl.DataFrame) -> str:
    if data.height == 0 or "agreement" not in data.columns:
        return "no pairs"
    judged = data.filter(pl.col("agreement").is_not_null())
    alone = data.height - judged.height
    unanimous = rate(int((judged["agreement"] >= 1.0 - 1e-9).sum()), judged.height).as_dict()
    text = (f"every judge agreed on {describe(unanimous, noun='pairs with two or more verdicts')}"
            if judged.height else "no pair had two or more verdicts")
    return text + (f"; {alone} pairs were decided by one judge alone (no agreement to show)" if alone else "")


def _pair_confidence(data: pl.DataFrame) -> str:
    """The distribution of the pairs' `confidence` (the judges' probability of the panel's decision)."""
    values = data["confidence"].drop_nulls().drop_nans() if "confidence" in data.columns else pl.Series([], dtype=float)
    if values.len() == 0:
        return "not available (the judges' backends gave no token probabilities)"
    quartiles = ", ".join(f"{values.quantile(q, 'nearest'):.2f}" for q in (0.25, 0.5, 0.75))
    bins = [("< 0.6", values < 0.6), ("0.6-0.8", (values >= 0.6) & (values < 0.8)), (">= 0.8", values >= 0.8)]
    spread = ", ".join(f"{name}: {int(mask.sum())}" for name, mask in bins)
    missing = data.height - values.len()
    return (f"mean {values.mean():.2f}, quartiles {quartiles} over {values.len()} pairs ({spread})"
            + (f"; {missing} pairs without one" if missing else ""))


def _agreement_line(data: pl.DataFrame, judged: bool) -> str:
    if not judged:
        return ""
    return (f"\n- **Judges on the kept pairs:** {_pair_agreement(data)}"
            f"\n- **Judges' confidence in the kept pairs' decisions:** {_pair_confidence(data)}")


def _length_bias(data: pl.DataFrame) -> tuple[str, str]:
    """(the headline figure, what it means in words), from curation's length-bias report."""
    from prefdata.curate.length_bias import length_bias_report

    report = length_bias_report(data)
    n = report["pairs"]
    longer = round((report["chosen_longer_frac"] or 0) * n)
    figure = describe(rate(longer, n).as_dict(), noun="pairs")
    if n == 0:
        return figure, "No pairs: nothing to measure."
    words = [f"The chosen answer is the longer one in {longer} of {n} pairs."]
    if longer == n:
        words.append("Every pair prefers the longer answer, so a model trained on this set is taught that longer "
                     "wins; no length coefficient can be fitted (it is infinite).")
    elif longer == 0:
        words.append("Every pair prefers the shorter answer (no pair has the longer one chosen).")
    elif report.get("logit_coef") is None:
        words.append(f"Too few pairs of different lengths to fit a length coefficient ({report.get('logit_note')}).")
    else:
        low, high = report["logit_ci"]
        words.append(f"Log-odds of being chosen per 100 extra characters: {report['logit_coef']:.2f} "
                     f"(95% CI {low:.2f} to {high:.2f}).")
    if n < FEW:
        words.append(f"With {n} pairs the share is uncertain (see its interval).")
    if (report["chosen_longer_frac"] or 0) > 0.65 or (report["chosen_longer_frac"] or 0) < 0.35:
        words.append("A `length_balance` curation step, or a judge told to ignore length, reduces the bias.")
    return figure, " ".join(words)


def _outcome(check: dict) -> str:
    if check.get("skipped"):
        return "skipped"  # nothing to judge: never "yes"
    return "yes" if check["passed"] else "**no**"


def _validation(validation: dict) -> str:
    if not validation:
        return "Not validated."
    lines = [f"**{'Passed' if validation['passed'] else 'Failed'}** (`validation.json` is the stamp that "
             f"`align train` checks).", "", "| check | severity | passed | value | detail |", "|---|---|---|---|---|"]
    for check in validation["checks"]:
        value = "" if check["value"] is None else check["value"]
        detail = (check.get("message") or "").replace("|", "\\|")
        lines.append(f"| {check['name']} | {check['severity']} | {_outcome(check)} | {value} | {detail} |")
    return "\n".join(lines)


def _train_model(spec: Spec) -> tuple[str, str]:
    """The --model for the card's training command, and a sentence on it: the model the build used when it
    can be trained here (the embedded folder works offline), else a placeholder and how to pick one."""
    from prefdata.generate import generators

    pick = ("the SFT model you will train: a local folder or a Hub id with a chat template "
            "(`prefdata models path` prints the embedded SmolLM2-135M-Instruct folder, which works offline)")
    backends = generators(spec.generate) if spec.generate is not None else []
    from prefdata.backends.registry import KINDS

    local = [b for b in backends if KINDS[b.kind].local]
    if not local:
        return "YOUR_SFT_MODEL", f"Replace `YOUR_SFT_MODEL` with {pick}."
    if local[0].kind == "embedded":
        return '"$(prefdata models path)"', ("`prefdata models path` prints the folder of the embedded "
                                             "SmolLM2-135M-Instruct that wrote these answers; no network needed.")
    return local[0].model, f"`{local[0].model}` wrote these answers; any other SFT model works: {pick}."


def _slug(name: str) -> str:
    """A folder name a shell takes as it is."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "dataset"


def _use(spec: Spec, passed: bool) -> str:
    load = """```python
from datasets import load_dataset
pairs = load_dataset("parquet", data_files="data.parquet", split="train")
```"""
    if not passed:
        return (f"{load}\n\nValidation failed, so `align train` refuses this data: fix what the failed checks "
                "above name (or change the spec) and build again.")
    model, note = _train_model(spec)
    return f"""{load}

Train on it from this folder (the data must carry a passing `validation.json`; the run goes beside the
folder, since a build refuses a folder holding files it does not write):

```bash
align train --method dpo --profile cpu --model {model} --data . --output ../{_slug(spec.shown(spec.name))}-dpo
```

{note}"""


def _plots(plots: list[str]) -> str:
    from prefdata.report.plots import PLOTS

    if not plots:
        return "Install `prefdata[report]` (matplotlib) for the plots."
    return "\n\n".join(f"![{PLOTS[name]}]({name})" for name in plots)


def _sources(sources: dict | None) -> str:
    """Rows each spec source gave (read, then taken by its limit or weight), and the final rows by `source`."""
    if not sources or not sources.get("read"):
        return ""
    lines = ["## Sources", "", "| source | rows read | taken | rule |", "|---|---:|---:|---|"]
    for s in sources["read"]:
        rule = ", ".join(f"{k} {s[k]:g}" for k in ("weight", "limit") if s.get(k) is not None) or "all rows"
        name = s["path"] + (f" ({s['split']})" if s.get("split") else "")
        lines.append(f"| `{name}` | {s['rows']:,} | {s['taken']:,} | {rule} |")
    if sources.get("in_data"):
        lines += ["", "Rows in the final data by their `source`: " + ", ".join(
            f"{name or 'none'}: {count:,}" for name, count in sources["in_data"].items()) + "."]
    return "\n".join(lines) + "\n\n"


def _review(review: dict | None) -> str:
    """What a person checked (`prefdata review`), and how often the labels and judges matched their decisions."""
    if not review:
        return ""
    lines = ["## Human review", "",
             f"A person checked {review['checked']} pairs in `prefdata review`: accepted {review['accepted']}, "
             f"swapped chosen and rejected in {review['swapped']}, dropped {review['dropped']} (each with the "
             f"reason in `dropped.parquet`); {review['notes']} notes in `review.jsonl`."]
    if review.get("not_in_data"):
        lines.append(f"{review['not_in_data']} decisions concern pairs that an earlier stage removed; they are "
                     "kept in the log, not applied.")
    if review["panel"]["n"]:
        lines += ["", f"The judges' label matched the person on "
                      f"{describe(review['panel'], noun='pairs accepted or swapped')}."]
    if review.get("judges"):
        lines += ["", "| judge | verdicts that picked the person's choice |", "|---|---|"]
        lines += [f"| {name} | {describe(f, noun='verdicts')} |" for name, f in review["judges"].items()]
    return "\n".join(lines) + "\n\n"


def _cost(manifest: dict) -> str:
    cost = manifest.get("cost") or {}
    total = cost.get("usd") if isinstance(cost, dict) else None
    return "no paid requests" if not total else f"${total:.4f}"


def _conversation(manifest: dict) -> str:
    """Multi-turn builds: how the conversations were made (the card's provenance)."""
    talk = manifest.get("conversation")
    if not talk:
        return ""
    return (f"\n- **Conversations:** multi-turn ({talk['turns']} assistant turns written per prompt): each prompt was "
            f"continued {talk['turns'] - 1} time(s), {talk['assistant']} answering (with its first sample's settings) "
            f"and {talk['user_simulator']} simulating the user's next turn; `prompt` holds every turn, ending with the "
            f"user's, and `chosen`/`rejected` answer the last one")


def _sft(sft: dict | None) -> str:
    if not sft:
        return ""
    bounds = ", ".join(f"{k} {v}" for k in ("min_score", "min_margin") if (v := sft.get(k)) is not None)
    left = ", ".join(f"{n} {reason}" for reason, n in sft["dropped"].items()) or "none"
    return (f"## Best-of-n SFT set\n\n`sft.parquet` (config `sft`) holds the best answer for {sft['exported']} of "
            f"{sft['prompts']} prompts in TRL's `messages` form (for SFTTrainer{f'; {bounds}' if bounds else ''}); "
            f"left out: {left} (each in `sft.dropped.parquet` with its reason).\n\n")


def _mean_chars(figures: dict) -> str:
    return ", ".join(f"{column} {figures.get(column)}" for column in ("prompt", "chosen", "rejected"))


def render_card(spec: Spec, data: pl.DataFrame, manifest: dict, plots: list[str] | None = None,
                splits: dict[str, str] | None = None) -> str:
    """The card; `splits`: split -> file in the folder (default: all of data.parquet as train)."""
    meta = hub.front_matter(hub.card_data(spec, data, splits or {"train": "data.parquet"},
                                            bool(manifest.get("sft"))))
    figures = compute(data, "pairwise")
    models = ", ".join(sorted(manifest["tokens"])) or "none"
    tokens = "; ".join(f"{m}: {t['tokens_in']} in, {t['tokens_out']} out" for m, t in manifest["tokens"].items())
    mean_chars = figures.get("mean_chars", {})
    longer, bias_words = _length_bias(data)
    judged = bool((manifest.get("judging") or {}).get("judges"))
    return f"""{meta}
# {spec.shown(spec.name)}

{spec.shown(spec.description) or "A preference dataset built with prefdata."}

- **Pairs:** {data.height} (TRL conversational: `prompt`, `chosen`, `rejected`, plus scores){_conversation(manifest)}
- **Fingerprint:** `{manifest["fingerprint"]}`
- **Models:** {models} ({tokens or "no tokens used in this run"}; cost: {_cost(manifest)})
- **Chosen longer than rejected:** {longer}
- **Mean characters:** {_mean_chars(mean_chars)}
- **Built with:** {", ".join(f"{k} {v}" for k, v in manifest["versions"].items())}{_agreement_line(data, judged)}

## Counts per stage

Every removed row is in `dropped.parquet` with its stage and reason.

{_counts_table(manifest["counts"])}

{_sources(manifest.get("sources"))}{_pii(manifest["counts"])}## Judges

{_judges_table(manifest.get("judging") or {}, _judge_backends(spec))}

## Margins and length bias

**Length bias:** {bias_words}

{_plots(plots or [])}

{_review(manifest.get("review"))}{_sft(manifest.get("sft"))}## Validation

{_validation(manifest.get("validation") or {})}

## Use

{_use(spec, bool((manifest.get("validation") or {}).get("passed")))}

`manifest.json` holds the full spec, the counts, the stages run and reused, and the package versions.
"""
