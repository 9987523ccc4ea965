"""The method registry: which TRL 1.x trainer and config each method is, and its published defaults.

TRL 1.16 layout: DPO and KTO in `trl`; ORPO and CPO (which runs SimPO with `loss_type="simpo"`) in
`trl.experimental`. IPO is DPO with `loss_type="ipo"`. Nothing here computes a loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class Method:
    trainer: str             # "module:Class"
    config: str
    data: str                # pairwise | unpaired: what the trainer is fed
    reference: bool          # needs a reference model (DPO, IPO, KTO); ORPO and SimPO do not
    learning_rate: float     # full-parameter default from the method's paper / TRL's recipe
    knobs: dict[str, Any]    # TrainConfig field -> published default


METHODS = {
    # DPO (Rafailov et al. 2023): beta 0.1; Zephyr's recipe lr 5e-7.
    "dpo": Method("trl:DPOTrainer", "trl:DPOConfig", "pairwise", True, 5e-7,
                  {"beta": 0.1, "label_smoothing": 0.0}),
    # IPO (Azar et al. 2023) is DPO's loss_type "ipo"; beta plays tau.
    "ipo": Method("trl:DPOTrainer", "trl:DPOConfig", "pairwise", True, 5e-7, {"beta": 0.1}),
    # KTO (Ethayarajh et al. 2024): beta 0.1, weights 1.0 (tune so that w_D*n_D / (w_U*n_U) is in [1, 4/3]).
    "kto": Method("trl:KTOTrainer", "trl:KTOConfig", "unpaired", True, 5e-7,
                  {"beta": 0.1, "desirable_weight": 1.0, "undesirable_weight": 1.0}),
    # ORPO (Hong et al. 2024): lambda 0.1 (TRL calls it beta), lr 8e-6.
    "orpo": Method("trl.experimental.orpo:ORPOTrainer", "trl.experimental.orpo:ORPOConfig", "pairwise", False,
                   8e-6, {"beta": 0.1}),
    # SimPO (Meng et al. 2024): beta 2.0, gamma/beta 0.5, lr ~1e-6; CPO's BC term off (cpo_alpha 0).
    "simpo": Method("trl.experimental.cpo:CPOTrainer", "trl.experimental.cpo:CPOConfig", "pairwise", False, 1e-6,
                    {"beta": 2.0, "simpo_gamma": 1.0, "label_smoothing": 0.0}),
    # A Bradley-Terry reward model (Ouyang et al. 2022): a sequence classifier with one logit; lr 1e-5 full,
    # x10 = TRL's RewardConfig default (1e-4) for LoRA. No beta.
    "reward": Method("trl:RewardTrainer", "trl:RewardConfig", "pairwise", False, 1e-5, {}),
}

LORA_LR_FACTOR = 10  # LoRA updates far fewer weights; the usual recipes run it about 10x the full-parameter rate


def method_defaults(method: str, profile: str) -> dict[str, Any]:
    spec = METHODS[method]
    lr = spec.learning_rate * (1 if profile == "full" else LORA_LR_FACTOR)
    return {"learning_rate": lr, **spec.knobs}


def load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def method_args(config: Any) -> dict[str, Any]:
    """The method's TRL config fields from a resolved TrainConfig."""
    m = config.method
    if m == "reward":
        return {}
    args: dict[str, Any] = {"beta": config.beta}
    if m == "dpo":
        # TRL 1.x: label smoothing is the robust-DPO flip rate, so it switches the loss to "robust".
        args["loss_type"] = ["robust"] if config.label_smoothing else ["sigmoid"]
        args["label_smoothing"] = config.label_smoothing
    elif m == "ipo":
        args["loss_type"] = ["ipo"]
    elif m == "kto":
        args.update(desirable_weight=config.desirable_weight, undesirable_weight=config.undesirable_weight)
    elif m == "simpo":
        args.update(loss_type="simpo", simpo_gamma=config.simpo_gamma, cpo_alpha=0.0,
                    label_smoothing=config.label_smoothing)
    return args
