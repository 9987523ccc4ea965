"""Format adapters: one raw record of a known preference-data format to a canonical record.

Canonical records are dicts shaped like `schema.PreferencePair`, `schema.UnpairedExample` or
`schema.PromptRecord`, with conversations as lists of `{role, content}`. Adapters raise
`RecordProblem` naming the input field; Pydantic then checks the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from prefdata.errors import RecordProblem
from prefdata.schema import is_blank
from prefdata.io import transcript

Record = dict[str, Any]

# ShareGPT speaker names (LLaMA-Factory, FastChat) to roles.
SHAREGPT_ROLES = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
    "bot": "assistant", "chatgpt": "assistant", "system": "system", "observation": "tool",
    "function_call": "assistant", "tool": "tool",
}
PAIR_EXTRAS = ("chosen_score", "rejected_score", "pair_id", "agreement", "judges", "source", "confidence")


def message(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RecordProblem(f"expected a message object, got {type(value).__name__}", field=where,
                            reason="wrong_type")
    if "role" in value or "content" in value:
        return {"role": value.get("role"), "content": value.get("content")}
    if "from" in value or "value" in value:
        speaker = value.get("from")
        role = SHAREGPT_ROLES.get(str(speaker).lower()) if speaker is not None else None
        if role is None:
            raise RecordProblem(f"unknown speaker {speaker!r}", field=f"{where}.from")
        return {"role": role, "content": value.get("value")}
    raise RecordProblem("message needs 'role' and 'content' (or ShareGPT 'from' and 'value')", field=where)


def messages(value: Any, where: str, role: str) -> list[dict[str, Any]]:
    """Text (one turn of `role`), one message object, or a list of them, as a list of messages."""
    if value is None:
        raise RecordProblem("missing", field=where, reason="missing_field")
    if isinstance(value, str):
        if role == "user" and transcript.is_transcript(value):
            return transcript.parse(value, drop_cue=True)
        return [{"role": role, "content": value}]
    if isinstance(value, dict):
        return [message(value, where)]
    if isinstance(value, list):
        if not value:
            raise RecordProblem("empty list of messages", field=where)
        return [message(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise RecordProblem(f"expected text or a list of messages, got {type(value).__name__}", field=where,
                        reason="wrong_type")


def _strip_prompt(prompt: list[dict], turns: list[dict]) -> list[dict]:
    """Some datasets (UltraFeedback binarised) repeat the prompt inside chosen/rejected: drop it."""
    n = len(prompt)
    if len(turns) > n and turns[:n] == prompt:
        return turns[n:]
    return turns


def _split_implicit(chosen: list[dict], rejected: list[dict], fields: tuple[str, str]) -> Record:
    """Full conversations in chosen/rejected: the shared turns are the prompt, the last turn the answer.
    Rows whose transcripts differ before the last turn would pair different prompts: they are dropped."""
    for turns, name in ((chosen, fields[0]), (rejected, fields[1])):
        if len(turns) < 2:
            raise RecordProblem("needs a prompt turn and an answer turn", field=name)
        if turns[-1]["role"] != "assistant":
            raise RecordProblem(f"last turn must be 'assistant', not {turns[-1]['role']!r}", field=name)
        if is_blank(str(turns[-1]["content"] or "")):
            raise RecordProblem("final assistant turn is empty", field=name, reason="empty_text")
    if chosen[:-1] != rejected[:-1]:
        same = next(i for i, (a, b) in enumerate(zip(chosen, rejected + [None])) if a != b)
        raise RecordProblem(
            f"chosen and rejected differ at turn {same + 1}, before their final turns (different prompts)",
            field=fields[0], reason="prompt_mismatch", drop=True,
        )
    return {"prompt": chosen[:-1], "chosen": chosen[-1:], "rejected": rejected[-1:]}


def _extras(rec: Record) -> Record:
    return {k: rec[k] for k in PAIR_EXTRAS if rec.get(k) is not None}


def trl_pair(rec: Record) -> Record:
    prompt = messages(rec.get("prompt"), "prompt", "user")
    chosen = _strip_prompt(prompt, messages(rec.get("chosen"), "chosen", "assistant"))
    rejected = _strip_prompt(prompt, messages(rec.get("rejected"), "rejected", "assistant"))
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, **_extras(rec)}


def ultrafeedback_binarized(rec: Record) -> Record:
    out = trl_pair(rec)
    out["chosen_score"], out["rejected_score"] = rec.get("score_chosen"), rec.get("score_rejected")
    return out


def trl_implicit(rec: Record) -> Record:
    chosen = messages(rec.get("chosen"), "chosen", "assistant")
    rejected = messages(rec.get("rejected"), "rejected", "assistant")
    return {**_split_implicit(chosen, rejected, ("chosen", "rejected")), **_extras(rec)}


def _transcript(value: Any, where: str) -> list[dict]:
    if not isinstance(value, str):
        raise RecordProblem(f"expected a transcript string, got {type(value).__name__}", field=where,
                            reason="wrong_type")
    try:
        return transcript.parse(value)
    except ValueError as exc:
        raise RecordProblem(str(exc), field=where) from None


def hh_rlhf(rec: Record) -> Record:
    chosen = _transcript(rec.get("chosen"), "chosen")
    rejected = _transcript(rec.get("rejected"), "rejected")
    return _split_implicit(chosen, rejected, ("chosen", "rejected"))


def _with_system(rec: Record, turns: list[dict]) -> list[dict]:
    system = rec.get("system")
    if isinstance(system, str) and system.strip():
        return [{"role": "system", "content": system}, *turns]
    return turns


def sharegpt(rec: Record) -> Record:
    prompt = _with_system(rec, messages(rec.get("conversations"), "conversations", "user"))
    return {
        "prompt": prompt,
        "chosen": messages(rec.get("chosen"), "chosen", "assistant"),
        "rejected": messages(rec.get("rejected"), "rejected", "assistant"),
    }


def _label(value: Any) -> Any:
    # LLaMA-Factory and CSV files spell labels as text; Pydantic checks whatever remains.
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def sharegpt_kto(rec: Record) -> Record:
    turns = _with_system(rec, messages(rec.get("messages"), "messages", "user"))
    if len(turns) < 2:
        raise RecordProblem("needs prompt turns and a final assistant turn", field="messages")
    return {"prompt": turns[:-1], "completion": turns[-1:], "label": _label(rec.get("label"))}


def trl_unpaired(rec: Record) -> Record:
    prompt = messages(rec.get("prompt"), "prompt", "user")
    completion = _strip_prompt(prompt, messages(rec.get("completion"), "completion", "assistant"))
    out = {"prompt": prompt, "completion": completion, "label": _label(rec.get("label"))}
    if rec.get("source") is not None:
        out["source"] = rec["source"]
    return out


SCORE_KEYS = ("fine-grained_score", "overall_score", "score", "rating")


def _number(value: Any, where: str) -> float | None:
    """A rating: a finite number, or None when absent. NaN, ±inf, booleans and text are bad input: NaN
    would compare false with every other rating and pick an arbitrary pair."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordProblem(f"a rating must be a number, not {type(value).__name__}", field=where,
                            reason="wrong_type")
    if not math.isfinite(value):
        raise RecordProblem(f"a rating must be a finite number, not {value}", field=where,
                            reason="non_finite_number")
    return float(value)


def _completion_score(item: Record, where: str) -> float | None:
    for key in SCORE_KEYS:
        if item.get(key) is not None:
            return _number(item[key], f"{where}.{key}")
    ratings = item.get("ratings")
    if isinstance(ratings, dict):
        ratings = list(ratings.values())
    if isinstance(ratings, list):  # per-aspect ratings; "N/A" and other text are left out, as before
        numbers = [_number(r, f"{where}.ratings") for r in ratings if isinstance(r, (int, float))]
        return sum(n / len(numbers) for n in numbers) if numbers else None  # no overflow to inf
    return None


def ultrafeedback(rec: Record) -> Record:
    """Binarise: the best-rated completion over the worst-rated one; equal ratings are never paired."""
    key = "instruction" if "instruction" in rec else "prompt"
    prompt = messages(rec.get(key), key, "user")
    items = rec.get("completions")
    if not isinstance(items, list):
        raise RecordProblem("expected a list of completions", field="completions")
    scored = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise RecordProblem("expected an object", field=f"completions[{i}]")
        text = item.get("response", item.get("text", item.get("completion")))
        score = _completion_score(item, f"completions[{i}]")
        if text is not None and score is not None:
            scored.append((score, i, text))
    if len(scored) < 2:
        raise RecordProblem("fewer than two rated completions", field="completions",
                            reason="too_few_rated_completions", drop=True)
    best = max(scored, key=lambda s: (s[0], -s[1]))
    worst = min(scored, key=lambda s: (s[0], s[1]))
    if best[0] == worst[0]:
        raise RecordProblem("all completions have the same rating", field="completions",
                            reason="ratings_tied", drop=True)
    return {
        "prompt": prompt,
        "chosen": messages(best[2], f"completions[{best[1]}].response", "assistant"),
        "rejected": messages(worst[2], f"completions[{worst[1]}].response", "assistant"),
        "chosen_score": best[0],
        "rejected_score": worst[0],
    }


def prompts(rec: Record) -> Record:
    key = next((k for k in ("prompt", "messages", "instruction") if k in rec), "prompt")
    out: Record = {"prompt": messages(rec.get(key), key, "user")}
    if rec.get("source") is not None:
        out["source"] = str(rec["source"])
    if rec.get("meta") is not None:
        import json

        out["meta"] = rec["meta"] if isinstance(rec["meta"], str) else json.dumps(rec["meta"], sort_keys=True)
    return out


@dataclass(frozen=True)
class Format:
    name: str
    kind: str  # pairwise | unpaired | prompts
    adapt: Callable[[Record], Record]
    description: str
    # canonical field -> input field, for error messages
    fields: dict[str, str] = field(default_factory=dict)


FORMATS: dict[str, Format] = {f.name: f for f in [
    Format("trl-standard", "pairwise", trl_pair, "prompt, chosen, rejected as strings"),
    Format("trl-conversational", "pairwise", trl_pair, "prompt, chosen, rejected as message lists"),
    Format("trl-implicit", "pairwise", trl_implicit, "chosen, rejected as full conversations"),
    Format("hh-rlhf", "pairwise", hh_rlhf, "chosen, rejected as Human/Assistant transcripts"),
    Format("sharegpt", "pairwise", sharegpt, "conversations + chosen/rejected {from, value}",
           {"prompt": "conversations"}),
    Format("sharegpt-kto", "unpaired", sharegpt_kto, "messages + label (LLaMA-Factory KTO)",
           {"prompt": "messages", "completion": "messages"}),
    Format("ultrafeedback", "pairwise", ultrafeedback, "instruction + rated completions, binarised",
           {"prompt": "instruction", "chosen": "completions", "rejected": "completions"}),
    Format("ultrafeedback-binarized", "pairwise", ultrafeedback_binarized,
           "prompt, chosen, rejected, score_chosen, score_rejected",
           {"chosen_score": "score_chosen", "rejected_score": "score_rejected"}),
    Format("trl-unpaired", "unpaired", trl_unpaired, "prompt, completion, label"),
    Format("prompts", "prompts", prompts, "prompt (or messages) only: input for generation"),
]}


def detect(records: list[Record]) -> str | None:
    """Name the format of a few sample records, or None when no rule fits."""
    keys = set().union(*(r.keys() for r in records)) if records else set()
    first = records[0] if records else {}
    if "completions" in keys:
        return "ultrafeedback"
    if "conversations" in keys and {"chosen", "rejected"} <= keys:
        return "sharegpt"
    if {"messages", "label"} <= keys:
        return "sharegpt-kto"
    if {"prompt", "completion", "label"} <= keys:
        return "trl-unpaired"
    if {"prompt", "chosen", "rejected"} <= keys:
        if {"score_chosen", "score_rejected"} <= keys:
            return "ultrafeedback-binarized"
        return "trl-conversational" if isinstance(first.get("prompt"), list) else "trl-standard"
    if {"chosen", "rejected"} <= keys:
        chosen = first.get("chosen")
        if isinstance(chosen, list):
            return "trl-implicit"
        if isinstance(chosen, str) and transcript.is_transcript(chosen):
            return "hh-rlhf"
        return None
    if keys & {"prompt", "messages", "instruction"} and not keys & {"chosen", "rejected", "completion"}:
        return "prompts"
    return None
