"""Profiles: how the model is loaded and trained on the hardware at hand, and which cannot run here.

- qlora: 4-bit NF4 with double quantisation and bf16 compute (QLoRA, Dettmers et al. 2023), LoRA
  r 64 on all linear layers, paged AdamW, gradient checkpointing. Needs a CUDA GPU and bitsandbytes.
- lora: LoRA r 16 on all linear layers, bf16, gradient checkpointing.
- full: every weight, bf16, gradient checkpointing.
- cpu: fp32, no gradient checkpointing, LoRA: TRL's defaults (bf16 + checkpointing) made one DPO step
  of SmolLM2-135M about 12x slower on this machine's CPU (DESIGN.md, measured).
"""

from __future__ import annotations

from typing import Any

from prefdata.errors import PrefdataError

LORA = {"qlora": (64, 16), "lora": (16, 32), "cpu": (16, 32)}  # profile -> (r, alpha)


def profile_defaults(profile: str) -> dict[str, Any]:
    r, alpha = LORA.get(profile, (None, None))
    return {"lora_r": r, "lora_alpha": alpha}


def check_profile(profile: str, hardware: dict[str, Any], launch: str | None = None) -> list[str]:
    """Raise a one-line error for a profile this machine cannot run; return warnings for a poor fit."""
    gpus = hardware["gpus"]
    if profile == "qlora":
        if not gpus:
            raise PrefdataError("profile qlora needs a CUDA GPU (4-bit bitsandbytes) and this machine has none; "
                                "use --profile cpu here")
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise PrefdataError("profile qlora needs bitsandbytes: pip install 'prefdata[train]'") from None
    if launch and not gpus:
        raise PrefdataError(f"--launch {launch} runs DeepSpeed/FSDP across GPUs and this machine has none")
    if profile == "cpu" and gpus:
        return [f"profile cpu on a machine with {len(gpus)} GPU(s): training stays on the CPU"]
    if profile in ("lora", "full") and not gpus:
        return [f"profile {profile} without a GPU runs bf16 with gradient checkpointing on the CPU, about 12x "
                "slower than --profile cpu"]
    return []


def _bf16(hardware: dict[str, Any]) -> bool:
    return not hardware["gpus"] or all(g.get("bf16") for g in hardware["gpus"])


def checkpointing(on: bool, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """TrainingArguments fields for (gradient) checkpointing under the name this transformers knows:
    5.x renamed it `activation_checkpointing` and warns (FutureWarning) whenever only the old name is set,
    which TRL's configs do by default, so the new name is set explicitly when it exists."""
    from transformers import TrainingArguments

    name = "activation_checkpointing" if "activation_checkpointing" in TrainingArguments.__dataclass_fields__ \
        else "gradient_checkpointing"
    return {name: on, **({f"{name}_kwargs": kwargs} if kwargs else {})}


def training_args(profile: str, hardware: dict[str, Any]) -> dict[str, Any]:
    """TrainingArguments fields; every TRL preference config defaults to bf16 + checkpointing, so set both."""
    if profile == "cpu":
        return {"bf16": False, "fp16": False, **checkpointing(False), "use_cpu": True, "optim": "adamw_torch"}
    bf16 = _bf16(hardware)
    # PEFT's frozen base needs reentrant-free checkpointing to pass gradients to the adapters.
    peft = {"use_reentrant": False} if profile in ("lora", "qlora") else None
    args = {"bf16": bf16, "fp16": not bf16 and bool(hardware["gpus"]), **checkpointing(True, peft)}
    if profile == "qlora":
        args["optim"] = "paged_adamw_32bit"
    return args


def model_kwargs(profile: str, hardware: dict[str, Any]) -> dict[str, Any]:
    """`from_pretrained` keyword arguments (TRL's `model_init_kwargs`)."""
    import torch

    if profile == "cpu":
        return {"dtype": torch.float32}
    dtype = torch.bfloat16 if _bf16(hardware) else torch.float16
    return {"dtype": dtype}


def quantization(profile: str, hardware: dict[str, Any]) -> Any:
    if profile != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if _bf16(hardware) else torch.float16)


def lora_config(config: Any) -> Any:
    """PEFT LoraConfig for the LoRA profiles; None for full-parameter training."""
    if config.profile == "full":
        return None
    from peft import LoraConfig

    # SEQ_CLS: PEFT also trains (and saves) the reward model's fresh head, which LoRA alone would leave random
    task = "SEQ_CLS" if config.method == "reward" else "CAUSAL_LM"
    return LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, bias="none", task_type=task)
