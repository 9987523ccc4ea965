"""Turn a judge's text into a `Verdict` without ever executing it.

The verdict object is found in the text (prose, code fences and all), repaired by `json_repair`
when it is not strict JSON (trailing commas, single quotes), and checked by Pydantic. MT-Bench's
`[[A]]` / `[[B]]` / `[[C]]` is read when there is no JSON object.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import json_repair
from pydantic import BaseModel, field_validator

Winner = Literal["a", "b", "tie"]
_WINNERS = {"a": "a", "answer a": "a", "assistant a": "a", "[[a]]": "a", "1": "a",
            "b": "b", "answer b": "b", "assistant b": "b", "[[b]]": "b", "2": "b",
            "tie": "tie", "c": "tie", "[[c]]": "tie", "equal": "tie", "both": "tie", "none": "tie", "draw": "tie"}
_MT_BENCH = re.compile(r"\[\[(A|B|C)\]\]")


class Verdict(BaseModel):
    winner: Winner | None = None  # None: no verdict could be read
    score_a: float | None = None
    score_b: float | None = None
    rationale: str | None = None

    @field_validator("winner", mode="before")
    @classmethod
    def _winner(cls, value: Any) -> Any:
        if value is None:
            return None
        return _WINNERS.get(str(value).strip().lower())

    @field_validator("score_a", "score_b", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        try:
            return float(value)
        except (TypeError, ValueError):
            return None

    @field_validator("rationale", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else str(value)


def _first_object(text: str) -> dict | None:
    start = text.find("{")
    if start < 0:
        return None
    value = json_repair.loads(text[start:])
    if isinstance(value, list):  # json_repair returns every object it found; the judge's is the first
        value = next((v for v in value if isinstance(v, dict)), None)
    return value if isinstance(value, dict) else None


def parse_verdict(text: str) -> Verdict:
    """Read a judge's answer. `winner` is None when nothing usable is in `text`."""
    obj = _first_object(text or "")
    if obj is not None:
        keys = {k.lower(): v for k, v in obj.items() if isinstance(k, str)}
        verdict = Verdict.model_validate({
            "winner": keys.get("winner", keys.get("verdict", keys.get("better"))),
            "score_a": keys.get("score_a"),
            "score_b": keys.get("score_b"),
            "rationale": keys.get("rationale", keys.get("explanation", keys.get("reason"))),
        })
        if verdict.winner is None and verdict.score_a is not None and verdict.score_b is not None:
            diff = verdict.score_a - verdict.score_b
            verdict.winner = "a" if diff > 0 else "b" if diff < 0 else "tie"
        if verdict.winner is not None:
            return verdict
    marks = _MT_BENCH.findall(text or "")
    if marks:
        return Verdict(winner={"A": "a", "B": "b", "C": "tie"}[marks[-1]], rationale=text)
    return Verdict()
