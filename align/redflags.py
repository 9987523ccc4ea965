"""Red flags in a preference run's logs, with practitioners' thresholds.

- overfitting: reward accuracy above 0.98 within the first 10% of steps (the model memorises the pairs,
  often a sign of trivially separable or leaked data), pooled over the latest logs that cover at least
  32 pairs: one batch of 4 ranked right is chance, not a symptom;
- rejected log-probs collapsing: the rejected completions' mean log-prob falls far below where it started
  (the policy escapes by pushing everything down, not by preferring the chosen);
- chosen rewards falling: the chosen completions' implicit reward goes negative and keeps falling
  (likelihood displacement: the chosen answers get less likely too);
- flat margins: past half the run, the reward margin has not grown.

`RedFlags.update(step, max_steps, logs)` is pure Python over the trainer's logged metrics (tested on
planted sequences); `RedFlagCallback` feeds it from a transformers Trainer and can stop the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("align")

SEVERE = {"overfitting", "rejected_collapse"}


@dataclass
class Thresholds:
    overfit_accuracy: float = 0.98
    overfit_share: float = 0.10          # of max_steps
    overfit_min_pairs: int = 32          # pairs the pooled accuracy must cover
    collapse_nats: float = 20.0          # drop of the rejected mean log-prob below its start, and
    collapse_ratio: float = 0.5          # ... by at least this share of its starting magnitude
    chosen_window: int = 3               # consecutive logs of falling, negative chosen rewards
    flat_margin: float = 0.01            # margin growth below this after half the run is flat
    flat_after: float = 0.5


@dataclass
class RedFlags:
    thresholds: Thresholds = field(default_factory=Thresholds)
    pairs_per_log: int = 1  # pairs behind each logged training accuracy (batch x accumulation x logging steps)
    flags: list[dict[str, Any]] = field(default_factory=list)
    _accuracies: list[float] = field(default_factory=list)
    _first: dict[str, float] = field(default_factory=dict)
    _chosen: list[float] = field(default_factory=list)
    _margins: list[float] = field(default_factory=list)

    def _raise(self, name: str, step: int, message: str) -> dict[str, Any]:
        if any(f["flag"] == name for f in self.flags):
            return {}
        flag = {"flag": name, "step": step, "message": message}
        self.flags.append(flag)
        log.warning("red flag at step %d: %s: %s", step, name, message)
        return flag

    def update(self, step: int, max_steps: int, logs: dict[str, float]) -> list[dict[str, Any]]:
        """New flags raised by this log entry (training logs only; `eval_` entries are skipped)."""
        if any(k.startswith("eval_") for k in logs):
            return []
        t, new = self.thresholds, []
        for key in ("logps/rejected", "rewards/margins"):
            if key in logs:
                self._first.setdefault(key, logs[key])
        acc = logs.get("rewards/accuracies")
        if acc is not None and max_steps >= 10 and step <= max(1, t.overfit_share * max_steps):
            self._accuracies.append(acc)
            recent = self._accuracies[-max(1, -(-t.overfit_min_pairs // max(self.pairs_per_log, 1))):]
            pooled = sum(recent) / len(recent)
            if len(recent) * self.pairs_per_log >= t.overfit_min_pairs and pooled > t.overfit_accuracy:
                new.append(self._raise("overfitting", step, f"reward accuracy {pooled:.3f} over the last "
                                       f"{len(recent) * self.pairs_per_log} pairs > {t.overfit_accuracy} within "
                                       f"the first {t.overfit_share:.0%} of steps"))
        rej = logs.get("logps/rejected")
        if rej is not None:
            start = self._first["logps/rejected"]
            drop = start - rej
            if drop > t.collapse_nats and drop > t.collapse_ratio * abs(start):
                new.append(self._raise("rejected_collapse", step, f"rejected log-prob fell from {start:.1f} to "
                                       f"{rej:.1f}"))
        chosen = logs.get("rewards/chosen")
        if chosen is not None:
            self._chosen.append(chosen)
            last = self._chosen[-t.chosen_window:]
            if len(last) == t.chosen_window and all(v < 0 for v in last) and \
                    all(b < a for a, b in zip(last, last[1:])):
                new.append(self._raise("chosen_rewards_falling", step, f"chosen rewards negative and falling for "
                                       f"{t.chosen_window} logs (now {chosen:.3f})"))
        margin = logs.get("rewards/margins")
        if margin is not None:
            self._margins.append(margin)
            if max_steps > 0 and step >= t.flat_after * max_steps and len(self._margins) >= 4:
                half = len(self._margins) // 2
                early = sum(self._margins[:half]) / half
                late = sum(self._margins[half:]) / (len(self._margins) - half)
                if late - early < t.flat_margin:
                    new.append(self._raise("flat_margins", step, f"reward margin {early:.4f} -> {late:.4f}: no "
                                           f"growth past {t.flat_after:.0%} of the run"))
        return [f for f in new if f]


def callback(flags: RedFlags, early_stop: bool) -> Any:
    from transformers import TrainerCallback

    class RedFlagCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            flags.pairs_per_log = pairs_per_log(args)
            raised = flags.update(state.global_step, state.max_steps, logs or {})
            if early_stop and any(f["flag"] in SEVERE for f in raised):
                log.warning("stopping early on a red flag (early_stop)")
                control.should_training_stop = True

    return RedFlagCallback()


def pairs_per_log(args: Any) -> int:
    """Pairs behind one logged training metric: the trainer averages over the steps since the last log."""
    steps = args.logging_steps if args.logging_steps >= 1 else 1  # a float below 1 is a share of the run
    return int(args.per_device_train_batch_size * args.gradient_accumulation_steps * max(args.world_size, 1) * steps)
