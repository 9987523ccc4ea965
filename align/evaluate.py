"""Held-out evaluation: reward accuracy and margins of the policy against the reference (TRL's DPO
metrics, whatever the method trained with), and the win rate of the policy's answers over the
reference's, judged by a prefdata judge panel in both orders."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from prefdata.backends.weights import weights_id
from prefdata.errors import PrefdataError

log = logging.getLogger("align")
RUN_CONFIG = "align_config.json"


def reward_eval(policy: Any, reference: Any, tok: Any, pairs: pl.DataFrame, *, beta: float = 0.1,
                max_length: int = 1024, batch_size: int = 2) -> dict[str, float]:
    """`eval_rewards/accuracies`, `eval_rewards/margins`, ... on held-out pairs: the implicit DPO reward
    beta * (log pi(y|x) - log pi_ref(y|x)) of chosen vs rejected. TRL's DPOTrainer computes them."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from prefdata.align.profiles import checkpointing

    if pairs.height == 0:
        return {}
    data = Dataset.from_polars(pairs.select("prompt", "chosen", "rejected"))
    with tempfile.TemporaryDirectory() as tmp:
        args = DPOConfig(output_dir=tmp, beta=beta, max_length=max_length, per_device_eval_batch_size=batch_size,
                         bf16=False, fp16=False, **checkpointing(False), report_to=[], use_cpu=not _cuda(),
                         disable_tqdm=True, save_strategy="no")
        trainer = DPOTrainer(model=policy, ref_model=reference, args=args, train_dataset=data, eval_dataset=data,
                             processing_class=tok)
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # the figures are returned, not printed
        metrics = trainer.evaluate()
    return {k: float(v) for k, v in metrics.items() if k.startswith("eval_") and isinstance(v, (int, float))}


def reward_model_accuracy(model_dir: str | Path, pairs: pl.DataFrame, max_length: int, batch_size: int = 8, *,
                          device: str = "auto", cache: Any = None) -> dict[str, Any]:
    """A reward model's held-out accuracy: the share of pairs where the chosen answer gets the higher reward
    (ties count wrong), and the mean margin, scored by prefdata's reward-model judge backend, so the figure is
    what a `reward_model` judge of this folder would see."""
    from prefdata.backends import ChatRequest, SamplingParams, run_requests
    from prefdata.backends.reward_transformers import TransformersRewardBackend
    from prefdata.judge.reward import read_reward
    from prefdata.tokens import messages

    backend = TransformersRewardBackend(str(model_dir), batch_size=max(batch_size, 8), device=device)
    params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_length)
    requests = [ChatRequest.of(messages(prompt + answer), params=params)
                for column in ("chosen", "rejected")
                for prompt, answer in pairs.select("prompt", column).iter_rows()]
    answers = run_requests(backend, requests, cache)
    failed = next((a.error for a in answers if a.error), None)
    if failed:
        raise PrefdataError(f"scoring the held-out pairs with {model_dir} failed: {failed}")
    rewards = [read_reward(a.text) for a in answers]
    chosen, rejected = rewards[:pairs.height], rewards[pairs.height:]
    correct = sum(c > r for c, r in zip(chosen, rejected))
    return {"accuracy": correct / pairs.height, "correct": correct, "pairs": pairs.height,
            "margin": sum(c - r for c, r in zip(chosen, rejected)) / pairs.height,
            "truncated": sum(a.finish_reason == "length" for a in answers), "model": backend.model}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def run_config(checkpoint: Path) -> dict[str, Any]:
    """The resolved config a run wrote beside its model (the run folder or its `model/`)."""
    for folder in (checkpoint, checkpoint.parent):
        if (folder / RUN_CONFIG).is_file():
            return json.loads((folder / RUN_CONFIG).read_text(encoding="utf-8"))
    return {}


def load_models(checkpoint: str | Path, reference: str | None = None) -> tuple[Any, Any, Any, dict[str, Any]]:
    """(policy, reference, tokenizer, run config) for a run folder, its model folder or a checkpoint.
    The config gains `_names`: (policy, reference) weight ids for the request cache."""
    import torch
    from transformers import AutoModelForCausalLM

    from prefdata.align.tokenizer import prepare_tokenizer

    checkpoint = Path(checkpoint)
    if (checkpoint / "model").is_dir():
        checkpoint = checkpoint / "model"
    if not checkpoint.is_dir():
        raise PrefdataError(f"{checkpoint}: no such checkpoint folder")
    config = run_config(checkpoint)
    adapter = (checkpoint / "adapter_config.json").is_file()
    # an adapter is loaded on the base it was trained on, whatever the reference; the reference is
    # --reference, else that base (or the run's model)
    trained_on = json.loads((checkpoint / "adapter_config.json").read_text())["base_model_name_or_path"] \
        if adapter else None
    reference_name = reference or trained_on or config.get("model")
    if reference_name is None:
        raise PrefdataError(f"{checkpoint}: not an align run and no --reference model given")
    dtype = torch.float32 if not _cuda() else torch.bfloat16
    if adapter:
        from peft import PeftModel

        policy = PeftModel.from_pretrained(_load(AutoModelForCausalLM, trained_on, dtype), str(checkpoint))
    else:
        policy = _load(AutoModelForCausalLM, str(checkpoint), dtype)
    ref_model = _load(AutoModelForCausalLM, reference_name, dtype)
    tok_source = checkpoint if (checkpoint / "tokenizer_config.json").is_file() else (trained_on or reference_name)
    tok, _ = prepare_tokenizer(str(tok_source), config.get("chat_template"))
    policy_id = f"{weights_id(checkpoint)}+{weights_id(trained_on)}" if adapter else weights_id(checkpoint)
    config = {**config, "_names": (f"policy:{policy_id}", f"reference:{weights_id(reference_name)}")}
    return policy, ref_model, tok, config


def _load(auto: Any, name: str, dtype: Any) -> Any:
    try:
        return auto.from_pretrained(name, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise PrefdataError(f"{name}: cannot load the model ({str(exc).splitlines()[0]})") from None


def generate(model: Any, tok: Any, prompts: list[list[dict]], max_new_tokens: int = 128, *, name: str,
             cache: Any = None, batch_size: int = 8) -> list[str]:
    """Greedy answers through the backend protocol and the request cache (`name` identifies the weights:
    a second `align eval` of the same checkpoint asks the model nothing)."""
    from prefdata.backends import ChatRequest, SamplingParams, run_requests
    from prefdata.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend(name, loaded=(tok, model), batch_size=batch_size)
    params = SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
    answers = run_requests(backend, [ChatRequest.of(p, params=params) for p in prompts], cache)
    failed = next((a.error for a in answers if a.error), None)
    if failed:
        raise PrefdataError(f"generating answers with {name} failed: {failed}")
    return [a.text.strip() for a in answers]


def win_rate(policy: Any, reference: Any, tok: Any, held_out: pl.DataFrame, judges: list[Any] | None = None,
             *, names: tuple[str, str] = ("policy", "reference"), cache: Any = None, max_new_tokens: int = 128,
             limit: int | None = None, panel: str = "majority") -> dict[str, Any]:
    """Share of held-out prompts where the judge panel prefers the policy's answer (ties count half).

    Each judge sees every comparison in both orders (`swap`); a judge whose two verdicts disagree counts
    a tie. Identical answers are ties without asking a judge. Answers and verdicts go through the
    backend protocol and `cache`; `names` (policy, reference) identify the weights in cache keys."""
    from prefdata.context import Context
    from prefdata.judge.panel import decide, resolve
    from prefdata.judge.stage import judge
    from prefdata.spec import JudgeSpec
    from prefdata.tokens import messages as turns

    prompts = held_out.select("prompt_id", "prompt").unique("prompt_id", keep="first", maintain_order=True)
    if limit:
        prompts = prompts.head(limit)
    if prompts.height == 0:
        raise PrefdataError("no held-out prompts to compare answers on")
    messages = [turns(p) for p in prompts["prompt"].to_list()]
    with _adapter_off(reference, policy) as ref_model:
        ref_answers = generate(ref_model, tok, messages, max_new_tokens, name=names[1], cache=cache)
    pol_answers = generate(policy, tok, messages, max_new_tokens, name=names[0], cache=cache)
    ids = prompts["prompt_id"]
    candidates = pl.concat([  # policy first: comparisons put the earlier candidate in `a`
        pl.DataFrame({"prompt_id": ids, "candidate_id": "policy:" + ids, "response": pol_answers}),
        pl.DataFrame({"prompt_id": ids, "candidate_id": "reference:" + ids, "response": ref_answers}),
    ]).sort("prompt_id", maintain_order=True)
    judges = judges or [JudgeSpec()]
    for spec in judges:
        spec.swap = True
    result = judge(candidates, judges, Context(cache=cache, quiet=True), prompts=prompts)
    decided, _ = decide(resolve(result.kept), panel, {})
    n_a = decided.filter(pl.col("decision") == "a").height
    n_b = decided.filter(pl.col("decision") == "b").height
    ties = decided.filter(pl.col("decision").is_null() | (pl.col("decision") == "tie")).height + result.dropped.height
    n = n_a + n_b + ties
    return {"win_rate": (n_a + 0.5 * ties) / n, "wins": n_a, "losses": n_b, "ties": ties, "prompts": n,
            "identical": result.dropped.height,
            "position_consistency": _consistency(result.kept),
            "examples": [{"prompt": messages[i][-1]["content"][:200], "policy": pol_answers[i][:300],
                          "reference": ref_answers[i][:300]} for i in range(min(3, len(messages)))]}


def _consistency(judgments: pl.DataFrame) -> float | None:
    from prefdata.judge.panel import resolve

    consistent = resolve(judgments)["consistent"].drop_nulls()
    return float(consistent.mean()) if consistent.len() else None


class _adapter_off:
    """The reference's answers: the given reference model, or the policy with its adapter disabled."""

    def __init__(self, reference: Any, policy: Any):
        self.reference, self.policy, self.ctx = reference, policy, None

    def __enter__(self) -> Any:
        if self.reference is not None:
            return self.reference
        self.ctx = self.policy.disable_adapter()
        self.ctx.__enter__()
        return self.policy

    def __exit__(self, *exc: Any) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(*exc)


def evaluate_checkpoint(checkpoint: str | Path, data: str, *, reference: str | None = None,
                        win: bool = False, judges: list[Any] | None = None, limit: int | None = None,
                        max_new_tokens: int = 128, skip_validation: bool = False,
                        max_length: int | None = None, batch_size: int = 2, no_cache: bool = False,
                        cache_path: str | Path | None = None) -> dict[str, Any]:
    """`align eval`: the held-out split of `data` (the same split rule as training). Win-rate answers
    and verdicts are cached in prefdata's request cache, or `cache_path` (`no_cache`: not used)."""
    from prefdata.align.config import TrainConfig
    from prefdata.align.data import load_run_data

    folder = Path(checkpoint)
    if run_config(folder / "model" if (folder / "model").is_dir() else folder).get("method") == "reward":
        if win:
            raise PrefdataError(f"{checkpoint}: a reward model writes no answers; --win-rate compares policies")
        return evaluate_reward_model(folder, data, limit=limit, skip_validation=skip_validation,
                                     max_length=max_length)
    policy, ref, tok, run = load_models(checkpoint, reference)
    fields = {k: run[k] for k in ("eval_fraction", "seed", "eval_split", "split") if k in run}
    cfg = TrainConfig(model=run.get("model") or reference or str(checkpoint), data=data, output=str(checkpoint),
                      method="dpo", skip_validation=skip_validation, **fields)
    from prefdata.align.data import drop_long_prompts

    max_length = max_length or run.get("max_length") or 1024
    run_data, _ = drop_long_prompts(load_run_data(cfg), tok, max_length)  # as the run did
    held = run_data.held_out
    if held.height == 0:
        raise PrefdataError(f"{data}: no held-out rows (eval_fraction 0 and no test split)")
    if limit:
        held = held.head(limit)
    out: dict[str, Any] = {"checkpoint": str(checkpoint), "data": data, "held_out_rows": held.height,
                           "stamp": run_data.stamp_state}
    if run_data.kind == "pairwise":
        from prefdata.align.methods import METHODS

        reference = run.get("method") in METHODS and METHODS[run["method"]].reference
        beta = run.get("beta") if reference else 0.1
        out["reward"] = reward_eval(policy, ref, tok, held, beta=beta or 0.1, max_length=max_length,
                                    batch_size=run.get("batch_size") or batch_size)
    if win:
        from prefdata.backends import RequestCache
        from prefdata.backends.cache import default_path

        cache = None if no_cache else RequestCache(cache_path or default_path())
        try:
            out["win_rate"] = win_rate(policy, ref, tok, held, judges, names=run["_names"], cache=cache,
                                       max_new_tokens=max_new_tokens, limit=limit)
        finally:
            if cache is not None:
                out["cache"] = {"hits": cache.hits, "misses": cache.misses}
                cache.close()
    return out


def evaluate_reward_model(checkpoint: Path, data: str, *, limit: int | None = None, skip_validation: bool = False,
                          max_length: int | None = None) -> dict[str, Any]:
    """`align eval` of a reward model: its held-out accuracy on `data`, split and filtered as the run did."""
    from prefdata.align.config import TrainConfig
    from prefdata.align.data import load_run_data
    from prefdata.align.tokenizer import prepare_tokenizer
    from prefdata.align.data import drop_long_pairs, drop_long_prompts
    from prefdata.backends.reward_transformers import model_folder

    model = model_folder(str(checkpoint))
    run = run_config(Path(model))
    fields = {k: run[k] for k in ("eval_fraction", "seed", "eval_split", "split") if k in run}
    cfg = TrainConfig(model=run.get("model") or model, data=data, output=str(checkpoint), method="reward",
                      skip_validation=skip_validation, **fields)
    max_length = max_length or run.get("max_length") or 1024
    tok, _ = prepare_tokenizer(model)
    run_data, _ = drop_long_prompts(load_run_data(cfg), tok, max_length)
    run_data, _ = drop_long_pairs(run_data, tok, max_length)
    held = run_data.held_out.head(limit) if limit else run_data.held_out
    if held.height == 0:
        raise PrefdataError(f"{data}: no held-out pairs (eval_fraction 0 and no test split)")
    return {"checkpoint": str(checkpoint), "data": data, "held_out_rows": held.height, "stamp": run_data.stamp_state,
            "reward_model": reward_model_accuracy(model, held, max_length, run.get("batch_size") or 8)}
