"""The run configuration: one Pydantic model for the CLI flags and the YAML file alike.

Method knobs left unset take the method's published default (`align.methods`); profile knobs left
unset take the profile's (`align.profiles`). `resolved()` fills them in, and that is what the run
writes beside the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from prefdata.align.methods import METHODS, method_defaults
from prefdata.errors import PrefdataError

Method = Literal[tuple(METHODS)]  # the registry's names: a new method is one entry in align/methods.py
Profile = Literal["qlora", "lora", "full", "cpu"]
Launch = Literal["zero2", "zero3", "fsdp"]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Method = Field("dpo", description="dpo, kto, orpo, simpo, ipo, or reward (a reward model).")
    profile: Profile = Field("cpu", description="qlora, lora, full or cpu.")
    model: str = Field(description="Model folder or Hub id (an SFT model with a chat template; for reward, the "
                                   "base of the reward model, which gets a fresh one-logit head).")
    data: str = Field(description="Dataset folder or file (stamped by `prefdata validate`) or Hub dataset id.")
    output: str = Field(description="Run folder: model, card, config, metrics, plots.")
    split: str | None = Field(None, description="Split of a dataset folder or Hub dataset to train on.")
    eval_split: str | None = Field(None, description="Held-out split of a Hub dataset / folder (default: the "
                                                     "data's `split` column `test` rows, else eval_fraction).")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Share of prompts held out when the data has no "
                                                              "test split (by prompt, so no prompt leaks).")
    max_steps: int = Field(-1, description="Stop after this many optimiser steps (-1: epochs decide).")
    epochs: float = Field(1.0, gt=0, description="Passes over the training pairs (when max_steps is -1).")
    batch_size: int = Field(2, ge=1, description="Per-device batch size (pairs, or completions for KTO).")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps.")
    learning_rate: float | None = Field(None, gt=0, description="Default: the method's, x10 for LoRA profiles.")
    max_length: int = Field(1024, ge=8, description="Prompt + completion tokens; longer rows are truncated.")
    beta: float | None = Field(None, gt=0, description="DPO/IPO/KTO beta, SimPO beta, ORPO lambda.")
    simpo_gamma: float | None = Field(None, ge=0, description="SimPO target reward margin (gamma).")
    label_smoothing: float | None = Field(None, ge=0, lt=0.5, description="DPO (robust) / SimPO label smoothing.")
    desirable_weight: float | None = Field(None, gt=0, description="KTO weight of desirable completions.")
    undesirable_weight: float | None = Field(None, gt=0, description="KTO weight of undesirable completions.")
    lora_r: int | None = Field(None, ge=1, description="LoRA rank (profiles lora, qlora, cpu).")
    lora_alpha: int | None = Field(None, ge=1, description="LoRA scaling alpha (default: the profile's).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA layers.")
    target_modules: str | list[str] = Field("all-linear", description="LoRA target modules.")
    merge: bool = Field(False, description="Save the LoRA adapter merged into the base model.")
    chat_template: str | None = Field(None, description="Jinja file used when the tokenizer has no chat template.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate on the held-out split every N steps "
                                                           "(default: about 5 times per run).")
    logging_steps: int = Field(1, ge=1, description="Log the training figures every N steps.")
    early_stop: bool = Field(False, description="Stop when a severe red flag fires (overfitting, collapse).")
    skip_validation: bool = Field(False, description="Train on data without a passing stamp (said in the card).")
    eval_on_start: bool = Field(True, description="Evaluate the held-out pairs before the first step too (the "
                                                  "curves' step 0, where the policy is still the reference).")
    final_eval: bool = Field(True, description="Reward accuracy and margins vs the reference after training.")
    seed: int = Field(42, description="Seed of the shuffling, the held-out prompts' draw and the LoRA init.")
    launch: Launch | None = Field(None, description="Multi-GPU: accelerate launch with DeepSpeed ZeRO-2/3 or FSDP.")
    num_processes: int | None = Field(None, ge=1, description="Processes for --launch on all machines together "
                                      "(default: this machine's GPUs x num_machines).")
    num_machines: int = Field(1, ge=1, le=4096, description="Machines of a --launch run; start the same command on "
                                                           "each with its own --machine-rank.")
    machine_rank: int = Field(0, ge=0, description="This machine's rank in a --launch run over several (0: the one "
                                                   "at main_process_ip).")
    main_process_ip: str | None = Field(None, description="Address of the rank-0 machine (num_machines > 1).")
    main_process_port: int = Field(29500, ge=1, le=65535, description="Port of the rank-0 machine.")
    trl: dict[str, Any] = Field(default_factory=dict, description="Extra TRL config fields, passed as they are.")

    @model_validator(mode="after")
    def _machines(self) -> "TrainConfig":
        if self.num_machines > 1 and not self.launch:
            raise ValueError("num_machines > 1 needs launch (zero2, zero3 or fsdp)")
        if self.num_machines > 1 and not self.main_process_ip:
            raise ValueError("num_machines > 1 needs main_process_ip, the rank-0 machine's address")
        if self.machine_rank >= self.num_machines:
            raise ValueError(f"machine_rank {self.machine_rank} is not below num_machines {self.num_machines}")
        return self

    def resolved(self) -> "TrainConfig":
        from prefdata.align.profiles import profile_defaults

        filled = {k: v for k, v in {**profile_defaults(self.profile), **method_defaults(self.method, self.profile)}
                  .items() if getattr(self, k) is None}
        return self.model_copy(update=filled)


def load_config(path: str | Path | None, overrides: dict[str, Any]) -> TrainConfig:
    """The YAML file (if any), then the command line's options that were given."""
    from prefdata.safe_yaml import load

    data: dict[str, Any] = {}
    node = None
    if path is not None:
        path = Path(path)
        loaded = load(path, what="config")  # the bounded loader every user YAML goes through
        data, node = loaded.data or {}, loaded.node
        if not isinstance(data, dict):
            raise PrefdataError(f"{path}: a config is a YAML mapping")
        base = path.parent
        for key in ("model", "data", "output", "chat_template"):  # relative paths are relative to the file
            value = data.get(key)
            if isinstance(value, str) and not Path(value).is_absolute() and (base / value).exists():
                data[key] = str(base / value)
    merged = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return TrainConfig.model_validate(merged)
    except ValidationError as exc:
        from prefdata.safe_yaml import line_of

        err = exc.errors()[0]
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc) or "(top)"
        from_file = path is not None and loc and loc[0] in data and overrides.get(loc[0]) is None
        where = f"{path}:{line_of(node, loc)}: " if from_file else ("--" if loc else "")
        raise PrefdataError(f"{where}{dotted.replace('_', '-') if not from_file else dotted}: {err['msg']}") from None
