"""`align train`: pick the TRL trainer and settings, guard against the known mistakes, watch the run,
and tie the model to the data it was trained on.

    from prefdata.align.config import TrainConfig
    from prefdata.align.train import train
    summary = train(TrainConfig(method="dpo", profile="cpu", model=..., data=..., output=..., max_steps=20))
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from prefdata.errors import PrefdataError

log = logging.getLogger("align")


def world() -> tuple[int, int]:
    """(this process's rank, the number of processes): torchrun and accelerate launch set RANK and WORLD_SIZE."""
    import os

    return int(os.environ.get("RANK", "0")), max(int(os.environ.get("WORLD_SIZE", "1")), 1)


def batch_figures(config: Any) -> dict[str, int]:
    """Pairs per optimiser step: every process takes its own batch, and the gradients of all are averaged."""
    processes = world()[1]
    return {"per_device": config.batch_size, "accumulation": config.grad_accum, "processes": processes,
            "pairs_per_step": config.batch_size * config.grad_accum * processes}


def _eval_steps(config: Any, train_rows: int) -> int:
    if config.eval_steps:
        return config.eval_steps
    steps = config.max_steps if config.max_steps > 0 else math.ceil(
        train_rows / batch_figures(config)["pairs_per_step"] * config.epochs)
    return max(1, steps // 5)


def trl_config(config: Any, hardware: dict[str, Any], output: Path, eval_rows: int, train_rows: int) -> Any:
    """The method's TRL config: profile settings, method knobs, run bookkeeping; `config.trl` last."""
    from prefdata.align.methods import METHODS, load, method_args
    from prefdata.align.profiles import model_kwargs, quantization, training_args

    method = METHODS[config.method]
    kwargs: dict[str, Any] = {
        "output_dir": str(output / "checkpoints"),
        "max_steps": config.max_steps,
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.learning_rate,
        "max_length": config.max_length,
        "logging_steps": config.logging_steps,
        "save_strategy": "no",
        "report_to": [],
        "seed": config.seed,
        "disable_tqdm": True,
        "model_init_kwargs": model_kwargs(config.profile, hardware),
        **training_args(config.profile, hardware),
        **method_args(config),
    }
    if eval_rows:
        kwargs.update(eval_strategy="steps", eval_steps=_eval_steps(config, train_rows),
                      eval_on_start=config.eval_on_start)
    if config.method in ("orpo", "simpo"):  # no quantization_config argument on these trainers
        quant = quantization(config.profile, hardware)
        if quant is not None:
            kwargs["model_init_kwargs"]["quantization_config"] = quant
    kwargs.update(config.trl)
    try:
        return load(method.config)(**kwargs)
    except (TypeError, ValueError) as exc:  # mostly an unknown or wrong key under `trl:`
        name = method.config.replace(":", ".").rsplit(".", 1)[-1]
        raise PrefdataError(f"trl: {name} refused the settings: {exc}") from None


def build_trainer(config: Any, hardware: dict[str, Any], output: Path, train_ds: Any, eval_ds: Any, tok: Any,
                  callbacks: list[Any]) -> Any:
    from prefdata.align.methods import METHODS, load
    from prefdata.align.profiles import lora_config, quantization

    method = METHODS[config.method]
    args = trl_config(config, hardware, output, len(eval_ds) if eval_ds is not None else 0, len(train_ds))
    kwargs = {"model": config.model, "args": args, "train_dataset": train_ds, "eval_dataset": eval_ds,
              "processing_class": tok, "callbacks": callbacks, "peft_config": lora_config(config)}
    if config.method not in ("orpo", "simpo"):
        kwargs["quantization_config"] = quantization(config.profile, hardware)
    return load(method.trainer)(**kwargs)


def save_model(trainer: Any, config: Any, tok: Any, target: Path, main: bool = True) -> str:
    """The adapter (LoRA profiles) or the whole model; `merge` folds the adapter into the base weights.
    Every process calls it (the trainer gathers sharded weights); only the first one writes."""
    model = trainer.model
    # a reward model is always saved whole, so that its folder is a reward_model judge's `model:` as it is
    if (config.merge or config.method == "reward") and hasattr(model, "merge_and_unload"):
        if main:
            model.merge_and_unload().save_pretrained(str(target))
        kind = "merged"
    else:
        trainer.save_model(str(target))
        kind = "adapter" if hasattr(model, "peft_config") else "full"
    if main:
        tok.save_pretrained(str(target))
    return kind


def train(config: Any) -> dict[str, Any]:
    """Run one training job; returns the run summary (also written as `summary.json`)."""
    from prefdata.align import card, metrics
    from prefdata.align.data import drop_long_pairs, drop_long_prompts, kto_balance, load_run_data, to_dataset
    from prefdata.align.hardware import detect
    from prefdata.align.profiles import check_profile
    from prefdata.align.redflags import RedFlags, callback
    from prefdata.align.tokenizer import prepare_tokenizer, truncation

    config = config.resolved()
    hardware = detect()
    warnings = check_profile(config.profile, hardware, config.launch)
    data = load_run_data(config)
    warnings += data.notes
    if data.stamp_state != "valid":
        warnings.append(f"VALIDATION SKIPPED ({data.stamp_state}): {data.stamp_message}")
    tok, tok_notes = prepare_tokenizer(config.model, config.chat_template)
    trunc = truncation(data.train, data.kind, tok, config.max_length, seed=config.seed)
    # a reward model's long pairs are left out (drop_long_pairs says how many), not truncated
    warnings += [trunc[k] for k in ("warning", "prefix_warning") if k in trunc
                 and not (k == "warning" and config.method == "reward")]
    for w in warnings:
        log.warning(w)
    data, dropped = drop_long_prompts(data, tok, config.max_length)
    if dropped:
        warnings.append(dropped)
        log.warning(dropped)
    if config.method == "reward":
        data, dropped = drop_long_pairs(data, tok, config.max_length)
        if dropped:
            warnings.append(dropped)
            log.warning(dropped)
    train_ds = to_dataset(data.train, data.kind, config.method, config.seed)
    eval_ds = to_dataset(data.held_out, data.kind, config.method, config.seed) if data.held_out.height else None
    if config.method == "kto" and (balance := kto_balance(train_ds, config.desirable_weight,
                                                          config.undesirable_weight)):
        warnings.append(balance)
        log.warning(balance)

    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    metrics_path = output / metrics.METRICS
    main = world()[0] == 0  # with several processes, the first one writes the run's files
    if main:
        (output / "align_config.json").write_text(config.model_dump_json(indent=2) + "\n", encoding="utf-8")
        metrics_path.unlink(missing_ok=True)
    flags = RedFlags()
    trainer = build_trainer(config, hardware, output, train_ds, eval_ds, tok,
                            [metrics.callback(metrics_path), callback(flags, config.early_stop)])
    result = trainer.train()
    model_kind = save_model(trainer, config, tok, output / "model", main)
    # every process takes part in the closing evaluation (its trainer shards the pairs and waits for the others)
    final = closing_eval(trainer, config, tok, data, output)
    if not main:  # the first process writes the figures and reports
        return {"rank": world()[0], "steps": trainer.state.global_step, "red_flags": flags.flags,
                "batch": batch_figures(config)}
    if final:
        metrics.append(metrics_path, {"step": trainer.state.global_step, "final": True, **final})
    plots = metrics.plot(metrics_path, output / "plots")
    summary = {
        "method": config.method, "profile": config.profile, "model": config.model, "data": data.source,
        "fingerprint": data.fingerprint, "stamp_state": data.stamp_state, "stamp_message": data.stamp_message,
        "train_rows": data.train.height, "held_out_rows": data.held_out.height, "train_examples": len(train_ds),
        "steps": trainer.state.global_step, "train_loss": result.training_loss,
        "batch": {**batch_figures(config), "pairs_per_log": flags.pairs_per_log},  # the red flags' count, as the
        # trainer's own arguments give it
        "saved": model_kind,
        "held_out": final, "history": held_out_history(metrics_path), "red_flags": flags.flags,
        "warnings": warnings, "tokenizer": tok_notes, "truncation": trunc,
        "plots": [str(p.relative_to(output)) for p in plots], "hardware": hardware,
        "dropped": _write_dropped(data.dropped, output),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    card.write_card(output, config, data, summary)
    return summary


def _write_dropped(dropped: Any, output: Path) -> dict[str, int]:
    """Every row the run left out, with its reason, in `dropped.parquet`; the counts by reason."""
    if dropped is None or dropped.height == 0:
        return {}
    dropped.write_parquet(output / "dropped.parquet")
    return dict(dropped.group_by("reason").len().sort("reason").iter_rows())


def closing_eval(trainer: Any, config: Any, tok: Any, data: Any, output: Path) -> dict[str, Any]:
    """Held-out figures after training: a reward model's accuracy, or a policy's reward accuracy and margins
    against the base model; {} without held-out pairs or with `final_eval: false`."""
    if not (config.final_eval and data.kind == "pairwise" and data.held_out.height):
        return {}
    if config.method == "reward":
        from prefdata.align.evaluate import reward_model_accuracy

        return reward_model_accuracy(output / "model", data.held_out, config.max_length, config.batch_size,
                                     device="cpu" if config.profile == "cpu" else "auto")
    return final_eval(trainer.model, config, tok, data.held_out)


def final_eval(model: Any, config: Any, tok: Any, held_out: Any) -> dict[str, float]:
    """Reward accuracy and margins of the trained policy against the base model on the held-out pairs."""
    from transformers import AutoModelForCausalLM

    from prefdata.align.evaluate import reward_eval
    from prefdata.align.profiles import model_kwargs
    from prefdata.align.hardware import detect

    reference = AutoModelForCausalLM.from_pretrained(config.model, **model_kwargs(
        "cpu" if config.profile == "cpu" else config.profile, detect()))
    from prefdata.align.methods import METHODS

    beta = config.beta if METHODS[config.method].reference else 0.1  # a reference-free loss's beta is no KL weight
    return reward_eval(model, reference, tok, held_out, beta=beta, max_length=config.max_length,
                       batch_size=config.batch_size)


def held_out_history(path: Path) -> list[dict[str, Any]]:
    """Held-out reward accuracy and margin at each evaluation of the run (the trainer's own eval)."""
    import polars as pl

    from prefdata.align.metrics import read

    frame = read(path)
    keys = [k for k in ("eval_rewards/accuracies", "eval_rewards/margins", "eval_accuracy", "eval_margin", "eval_loss")
            if k in frame.columns]  # eval_accuracy, eval_margin: TRL's RewardTrainer
    if not keys:
        return []
    if "final" in frame.columns:  # the closing evaluation against the base model is reported on its own
        frame = frame.filter(pl.col("final").is_null())
    return frame.select("step", *keys).filter(pl.any_horizontal(pl.col(keys).is_not_null())).to_dicts()


def finished(run: Path, config: Any, fingerprint: str) -> dict[str, Any] | None:
    """The summary of a run that finished on this data (fingerprint) with this config, its model saved; else None.
    What `align iterate` and `align compare` reuse instead of training again."""
    summary, saved = run / "summary.json", run / "align_config.json"
    if not (summary.is_file() and saved.is_file() and (run / "model").is_dir()):
        return None
    found = json.loads(summary.read_text(encoding="utf-8"))
    same = json.loads(saved.read_text(encoding="utf-8")) == json.loads(config.resolved().model_dump_json())
    return found if same and found.get("fingerprint") == fingerprint else None


def refuse_if_unrunnable(config: Any) -> None:
    """The checks that need no model: profile vs hardware. For `--dry-run` and tests."""
    from prefdata.align.hardware import detect
    from prefdata.align.profiles import check_profile

    check_profile(config.profile, detect(), config.launch)


__all__ = ["train", "trl_config", "refuse_if_unrunnable", "PrefdataError"]
