"""`align iterate`: on-policy rounds (online / iterative DPO).

Each round is a `prefdata build` whose generator is the current policy (sources -> candidates written by the
policy -> the spec's judges -> curation -> validation and stamp), then `align train` from that policy on that
data; the next round generates with the model it saved. Round r lives in OUTPUT/round-r/ (`data/` the build
folder, `train/` the run with its model and card); `iterate.json` and `README.md` record every round.

Resumable: a round's build reuses its finished stages and the request cache (whose keys hash a local model's
weights), and its training is reused when the run's summary names the same data fingerprint and config. A
round that trains anew makes the later rounds' builds run fresh: their policy's folder holds new weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefdata.errors import PrefdataError

RECORD = "iterate.json"


def policy_spec(spec: Any, policy: str) -> Any:
    """The build spec with its generators replaced by `policy` (transformers, or vLLM where the spec used it)."""
    from prefdata.spec import BackendSpec

    generate = spec.generate
    if generate is None:
        raise PrefdataError(f"{spec.where('generate')}: on-policy rounds generate candidates with the policy; "
                            "this spec has no generate stage")
    first = generate.backends[0] if generate.backends else generate.backend
    kind = first.kind if first.kind in ("transformers", "vllm") else "transformers"
    backend = BackendSpec(kind=kind, model=policy, batch_size=first.batch_size, device=first.device,
                          engine_args=first.engine_args if kind == "vllm" else {})
    return spec.model_copy(update={"generate": generate.model_copy(update={"backend": backend, "backends": []})})


def _check_model(model: str) -> None:
    """The starting policy is a local folder or a Hub id: found now, not after a round's requests all fail."""
    from prefdata.io.raw import HUB_ID

    if not Path(model).expanduser().is_dir() and not (HUB_ID.match(model) and not Path(model.split("/")[0]).is_dir()):
        raise PrefdataError(f"--model {model}: no such model folder (nor a Hub id)")


def _built(spec: Any, folder: Path, fresh: bool, quiet: bool, number: int) -> Any:
    from prefdata.build import build

    result = build(spec, output=folder, quiet=quiet, fresh=fresh)
    if result.failed_requests:
        raise PrefdataError(f"round {number}: requests failed ({', '.join(result.failed_requests)}); run the same "
                            "command again to retry them (finished ones come from the cache)")
    if not result.validation_passed:
        raise PrefdataError(f"round {number}: the data did not pass validation ({'; '.join(result.failed_checks)}); "
                            f"see {folder / 'README.md'}")
    return result


def _evaluated(run: Path, eval_data: str, base: str, limit: int | None) -> dict:
    """Held-out reward accuracy and margin of the round's model against the starting model, on one fixed set
    (so rounds compare); kept in the run folder, reused while the model and set are the same."""
    from prefdata.align.evaluate import evaluate_checkpoint
    from prefdata.backends.weights import weights_id

    where = run / "iterate_eval.json"
    key = {"data": eval_data, "reference": base, "limit": limit, "model": weights_id(run / "model")}
    if where.is_file() and (saved := json.loads(where.read_text(encoding="utf-8"))).get("key") == key:
        return saved["figures"]
    figures = evaluate_checkpoint(run, eval_data, reference=base, limit=limit)
    where.write_text(json.dumps({"key": key, "figures": figures}, indent=2, default=str) + "\n", encoding="utf-8")
    return figures


def _record(number: int, policy: str, built: Any, run: Path, summary: dict, reused: bool) -> dict:
    manifest = built.manifest
    return {"round": number, "policy": policy, "data": str(built.output), "pairs": built.pairs,
            "fingerprint": manifest["fingerprint"], "validation_passed": built.validation_passed,
            "build_stages": manifest["stages"], "model": str(run / "model"), "card": str(run / "README.md"),
            "training_reused": reused, "steps": summary["steps"], "train_loss": summary["train_loss"],
            "held_out": summary.get("held_out") or {}, "red_flags": [f["flag"] for f in summary["red_flags"]]}


def iterate(spec: Any, config: Any, rounds: int, output: str | Path, *, eval_data: str | None = None,
            eval_limit: int | None = None, quiet: bool = False) -> list[dict]:
    """Run `rounds` on-policy rounds from `config.model`; returns (and writes) one record per round."""
    from prefdata.align.train import finished, refuse_if_unrunnable, train
    from prefdata.spec import load_spec

    spec = spec if not isinstance(spec, (str, Path)) else load_spec(spec)
    if rounds < 1:
        raise PrefdataError(f"--rounds must be at least 1, not {rounds}")
    out, base, policy = Path(output), config.model, config.model
    _check_model(base)
    refuse_if_unrunnable(config)
    records, fresh = [], False
    for number in range(1, rounds + 1):
        folder = out / f"round-{number}"
        built = _built(policy_spec(spec, policy), folder / "data", fresh, quiet, number)
        run = folder / "train"
        round_config = config.model_copy(update={"model": policy, "data": str(folder / "data"), "output": str(run),
                                                 "merge": True})  # a whole model: the next round's generator
        summary = finished(run, round_config, built.manifest["fingerprint"])
        reused = summary is not None
        summary = summary or train(round_config)
        fresh = fresh or not reused
        records.append(_record(number, policy, built, run, summary, reused))
        if eval_data is not None:
            records[-1]["eval"] = _evaluated(run, eval_data, base, eval_limit)
        policy = str(run / "model")
        write(out, records, base, eval_data)
    return records


def short(fingerprint: str) -> str:
    """`sha256:9755a...` as its first 12 hex digits."""
    return fingerprint.rpartition(":")[2][:12]


def _f(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else str(value))


def write(out: Path, records: list[dict], base: str, eval_data: str | None) -> None:
    """iterate.json (every figure) and README.md (a table per round)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / RECORD).write_text(json.dumps({"base_model": base, "eval_data": eval_data, "rounds": records},
                                         indent=2, default=str) + "\n", encoding="utf-8")
    lines = ["# On-policy rounds (`align iterate`)", "",
             f"Starting model: `{base}`. Each round generated with the previous round's model, was judged, curated "
             "and validated by `prefdata build`, then trained on; held-out figures are the run's own held-out "
             "pairs (reference: the round's starting model)" + (f"; `eval` is the fixed set `{eval_data}` against "
                                                                 "the starting model." if eval_data else "."), "",
             "| round | pairs | fingerprint | steps | train loss | held-out accuracy | held-out margin |"
             + (" eval accuracy | eval margin |" if eval_data else ""),
             "|---|---:|---|---:|---:|---:|---:|" + ("---:|---:|" if eval_data else "")]
    for r in records:
        held, ev = r["held_out"], (r.get("eval") or {}).get("reward") or {}
        row = (f"| {r['round']} | {r['pairs']} | `{short(r['fingerprint'])}` | {r['steps']} | {_f(r['train_loss'])} | "
               f"{_f(held.get('eval_rewards/accuracies'))} | {_f(held.get('eval_rewards/margins'))} |")
        if eval_data:
            row += f" {_f(ev.get('eval_rewards/accuracies'))} | {_f(ev.get('eval_rewards/margins'))} |"
        lines.append(row)
    lines += ["", "Each round's data card is `round-N/data/README.md`; its model card `round-N/train/README.md`."]
    (out / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
