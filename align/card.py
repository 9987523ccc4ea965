"""The model card: what was trained, on which data (fingerprint and validation stamp), how, and how it went."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD = "README.md"


def _f(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) and value == value else "n/a"


def _stamp_lines(data: Any) -> list[str]:
    stamp = data.stamp or {}
    if data.stamp_state == "valid":
        failed = [c["name"] for c in stamp.get("checks", []) if not c.get("passed") and not c.get("skipped")]
        return [f"- Validation stamp: **passed**, validated {stamp.get('validated_at')} by prefdata "
                f"{stamp.get('prefdata')}; {len(stamp.get('checks', []))} checks"
                + (f", warnings: {', '.join(failed)}" if failed else "")]
    return [f"- Validation stamp: **NOT VALID — trained with --skip-validation** ({data.stamp_state}: "
            f"{data.stamp_message})"]


def _reward_lines(held: dict[str, Any], config: Any) -> list[str]:
    """A reward model's held-out accuracy, and how to use the model as a judge."""
    accuracy = (f"- Accuracy (share of held-out pairs where the chosen answer gets the higher reward): "
                f"**{_f(held['accuracy'])}** ({held['correct']} of {held['pairs']} pairs)")
    usage = "Scored by prefdata's reward-model judge backend, as a build would. Use the model as a judge in a spec:"
    return [accuracy, f"- Mean reward margin (chosen - rejected): {_f(held['margin'])}",
            f"- Inputs cut to max_length {config.max_length}: {held['truncated']} of {2 * held['pairs']}",
            "", usage, "", "```yaml", "judges:", "  - kind: reward_model",
            "    backend: {kind: transformers, model: PATH_TO_THIS_FOLDER}", "```"]


def render(config: Any, data: Any, summary: dict[str, Any]) -> str:
    held = summary.get("held_out") or {}
    lines = [
        "---",
        f"base_model: {config.model}",
        "library_name: " + ("peft" if summary.get("saved") == "adapter" else "transformers"),
        f"tags: [trl, {config.method}, prefdata, align]",
        *(["pipeline_tag: text-classification"] if config.method == "reward" else []),
        "---",
        "",
        f"# {config.method.upper()} on {Path(data.source).name}",
        "",
        f"Trained with `align train` (prefdata) over TRL: method **{config.method}**, profile **{config.profile}**, "
        f"{summary['steps']} steps, saved as **{summary['saved']}**.",
        "",
        "## Data",
        "",
        f"- Dataset: `{data.source}` ({summary['train_rows']} training rows, {summary['held_out_rows']} held out "
        "by prompt)",
        f"- Content fingerprint: `{data.fingerprint}`",
        *_stamp_lines(data),
        "",
        "## Results on the held-out split",
        "",
    ]
    if held and config.method == "reward":
        lines += _reward_lines(held, config)
    elif held:
        lines += ["| metric | value |", "|---|---|"] + [
            f"| {k.removeprefix('eval_')} | {_f(v)} |" for k, v in held.items()
            if k.startswith("eval_rewards/") or k == "eval_loss"]
        lines.append("")
        lines.append("Rewards are the implicit DPO rewards of the policy against the base model.")
    else:
        lines.append("No held-out evaluation (no held-out pairs).")
    history = summary.get("history") or []
    if history:
        lines += ["", "During training (held-out):", "", "| step | " + " | ".join(
            k.removeprefix("eval_") for k in history[0] if k != "step") + " |",
            "|---" * len(history[0]) + "|"]
        lines += ["| " + " | ".join(_f(v) if k != "step" else str(v) for k, v in row.items()) + " |"
                  for row in history]
    lines += ["", "## Red flags and warnings", ""]
    flags = summary.get("red_flags") or []
    notes = summary.get("warnings") or []
    lines += [f"- red flag `{f['flag']}` at step {f['step']}: {f['message']}" for f in flags]
    lines += [f"- {w}" for w in notes]
    if not flags and not notes:
        lines.append("None.")
    lines += ["", "## Configuration", "", "```json", json.dumps(config.model_dump(), indent=2), "```", ""]
    if summary.get("plots"):
        lines += ["## Plots", ""] + [f"![{Path(p).stem}]({p})" for p in summary["plots"]] + [""]
    return "\n".join(lines)


def write_card(output: Path, config: Any, data: Any, summary: dict[str, Any]) -> Path:
    target = output / CARD
    target.write_text(render(config, data, summary), encoding="utf-8")
    model_dir = output / "model"
    if model_dir.is_dir():  # the model folder carries the card too, for pushing it on its own
        (model_dir / CARD).write_text(render(config, data, summary), encoding="utf-8")
    return target
