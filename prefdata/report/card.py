"""The dataset card: README.md with Hugging Face metadata, provenance and counts."""

from __future__ import annotations

import polars as pl
import yaml

from prefdata.spec import Spec
from prefdata.stats import compute


def _metadata(spec: Spec) -> str:
    meta = {
        "tags": ["dpo", "preference", "prefdata"],
        "task_categories": ["text-generation"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data.parquet"}]}],
    }
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _counts_table(counts: dict) -> str:
    lines = ["| stage | in | kept | dropped (reason: rows) |", "|---|---:|---:|---|"]
    for stage, c in counts.items():
        reasons = ", ".join(f"{r}: {n}" for r, n in c["dropped"].items()) or "none"
        lines.append(f"| {stage} | {c['in']} | {c['kept']} | {reasons} |")
    return "\n".join(lines)


def _pct(value) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _kappa(value) -> str:
    return "n/a" if value is None else f"{value:.2f}"  # undefined when a judge gave one label only


def _judges_table(judging: dict) -> str:
    """Per-judge figures and the judge-by-judge agreement (Cohen's kappa) matrix."""
    judges = judging.get("judges", {})
    if not judges:
        return "No judge figures."
    lines = ["| judge | verdicts | parse failures | position consistency | gold accuracy | flagged |",
             "|---|---:|---:|---:|---:|---|"]
    for name, f in judges.items():
        gold = f"{_pct(f['gold_accuracy'])} of {f['gold_items']}" if f["gold_items"] else "no gold items"
        lines.append(f"| {name} | {f['verdicts']} | {_pct(f['parse_failure_rate'])} | "
                     f"{_pct(f['position_consistency'])} | {gold} | {'yes' if f['flagged'] else 'no'} |")
    matrix = judging.get("agreement", {})
    names = list(matrix)
    if len(names) > 1:
        lines += ["", "Agreement between judges (Cohen's kappa; raw agreement in brackets):", "",
                  "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for a in names:
            cells = [f"{_kappa(matrix[a][b]['kappa'])} ({_pct(matrix[a][b]['raw'])}, {matrix[a][b]['items']} items)"
                     for b in names]
            lines.append(f"| {a} | " + " | ".join(cells) + " |")
    if judging.get("dropped_judges"):
        lines += ["", f"Left out of the panel by the gold check: {', '.join(judging['dropped_judges'])}."]
    return "\n".join(lines)


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
    local = [b for b in backends if b.kind in ("embedded", "transformers", "vllm")]
    if not local:
        return "YOUR_SFT_MODEL", f"Replace `YOUR_SFT_MODEL` with {pick}."
    if local[0].kind == "embedded":
        return '"$(prefdata models path)"', ("`prefdata models path` prints the folder of the embedded "
                                             "SmolLM2-135M-Instruct that wrote these answers; no network needed.")
    return local[0].model, f"`{local[0].model}` wrote these answers; any other SFT model works: {pick}."


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

Train on it from this folder (the data must carry a passing `validation.json`):

```bash
align train --method dpo --profile cpu --model {model} --data . --output model
```

{note}"""


def _plots(plots: list[str]) -> str:
    from prefdata.report.plots import PLOTS

    if not plots:
        return "Install `prefdata[report]` (matplotlib) for the plots."
    return "\n\n".join(f"![{PLOTS[name]}]({name})" for name in plots)


def _cost(manifest: dict) -> str:
    cost = manifest.get("cost") or {}
    total = cost.get("usd") if isinstance(cost, dict) else None
    return "no paid requests" if not total else f"${total:.4f}"


def render_card(spec: Spec, data: pl.DataFrame, manifest: dict, plots: list[str] | None = None) -> str:
    figures = compute(data, "pairwise")
    models = ", ".join(sorted(manifest["tokens"])) or "none"
    tokens = "; ".join(f"{m}: {t['tokens_in']} in, {t['tokens_out']} out" for m, t in manifest["tokens"].items())
    mean_chars = figures.get("mean_chars", {})
    return f"""{_metadata(spec)}
# {spec.name}

{spec.description or "A preference dataset built with prefdata."}

- **Pairs:** {data.height} (TRL conversational: `prompt`, `chosen`, `rejected`, plus scores)
- **Fingerprint:** `{manifest["fingerprint"]}`
- **Models:** {models} ({tokens or "no tokens used in this run"}; cost: {_cost(manifest)})
- **Chosen longer than rejected:** {figures.get("chosen_longer_frac", 0):.0%} of pairs
- **Mean characters:** prompt {mean_chars.get("prompt")}, chosen {mean_chars.get("chosen")}, rejected {mean_chars.get("rejected")}
- **Built with:** {", ".join(f"{k} {v}" for k, v in manifest["versions"].items())}

## Counts per stage

Every removed row is in `dropped.parquet` with its stage and reason.

{_counts_table(manifest["counts"])}

## Judges

{_judges_table(manifest.get("judging") or {})}

## Margins and length bias

{_plots(plots or [])}

## Validation

{_validation(manifest.get("validation") or {})}

## Use

{_use(spec, bool((manifest.get("validation") or {}).get("passed")))}

`manifest.json` holds the full spec, the counts, the stages run and reused, and the package versions.
"""
