"""Turn a judge's text into a `Verdict` (pairwise) or a `Score` (pointwise) without ever executing it.

JSON first: the verdict object is found in the text (prose, code fences and all), repaired by
`json_repair` when it is not strict JSON (trailing commas, single quotes), and checked by Pydantic.
An object at the very start of the answer (a prefilled or structured answer) is the verdict; otherwise
the last verdict-shaped object wins, since judges reason first and conclude last. Then the marks of
established judge prompts: MT-Bench `[[A]]` / `[[B]]` / `[[C]]` and `Rating: [[N]]`, Prometheus
`[RESULT] A` / `[RESULT] N`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import json_repair
from pydantic import BaseModel, Field, field_validator

Winner = Literal["a", "b", "tie"]
_WINNERS = {"a": "a", "answer a": "a", "assistant a": "a", "[[a]]": "a", "response a": "a",
            "b": "b", "answer b": "b", "assistant b": "b", "[[b]]": "b", "response b": "b",
            "tie": "tie", "c": "tie", "[[c]]": "tie", "equal": "tie", "both": "tie", "draw": "tie"}
_MT_BENCH = re.compile(r"\[\[(A|B|C)\]\]")
_PROMETHEUS_PAIR = re.compile(r"\[RESULT\]\s*\(?\s*(A|B)\b")
_RATING = re.compile(r"Rating:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]|Rating:\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_PROMETHEUS_SCORE = re.compile(r"\[RESULT\]\s*\(?\s*(\d+(?:\.\d+)?)")
_FENCE = re.compile(r"^\s*(```(?:json)?\s*)?")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN is no score


class Verdict(BaseModel):
    winner: Winner | None = None  # None: no verdict could be read
    score_a: float | None = None
    score_b: float | None = None
    rationale: str | None = None

    @field_validator("winner", mode="before")
    @classmethod
    def _winner(cls, value: Any) -> Any:
        return None if value is None else _WINNERS.get(str(value).strip().lower())

    @field_validator("score_a", "score_b", mode="before")
    @classmethod
    def _score(cls, value: Any) -> Any:
        return _number(value)

    @field_validator("rationale", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class Score(BaseModel):
    score: float | None = None  # None: no score could be read
    aspects: dict[str, float] = Field(default_factory=dict)
    rationale: str | None = None


def _balanced_end(text: str, start: int) -> int:
    """Index just past the `}` closing the object that opens at `start` (quotes respected), or len(text)."""
    depth, quote, escaped = 0, None, False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            escaped = ch == "\\" and not escaped
            if ch == quote and not escaped:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _objects(text: str) -> tuple[dict | None, list[dict]]:
    """The object the answer starts with (if any), and every top-level object in the text, in order.
    Each candidate is cut at its closing brace before any repair, so that one object never bleeds
    into the next (json_repair alone keeps the last of several)."""
    found, position = [], 0
    while (start := text.find("{", position)) >= 0:
        end = _balanced_end(text, start)
        value = json_repair.loads(text[start:end])
        if isinstance(value, list):
            value = next((v for v in value if isinstance(v, dict)), None)
        if isinstance(value, dict) and value:
            found.append(value)
            position = end
        else:
            position = start + 1
    leading = found[0] if found and _FENCE.sub("", text, count=1).startswith("{") else None
    return leading, found


def _lower(obj: dict) -> dict:
    return {k.lower(): v for k, v in obj.items() if isinstance(k, str)}


def _verdict_from(obj: dict) -> Verdict | None:
    keys = _lower(obj)
    verdict = Verdict.model_validate({
        "winner": keys.get("winner", keys.get("verdict", keys.get("better"))),
        "score_a": keys.get("score_a"),
        "score_b": keys.get("score_b"),
        "rationale": keys.get("rationale", keys.get("explanation", keys.get("reason"))),
    })
    if verdict.winner is None and verdict.score_a is not None and verdict.score_b is not None:
        diff = verdict.score_a - verdict.score_b
        verdict.winner = "a" if diff > 0 else "b" if diff < 0 else "tie"
    return verdict if verdict.winner is not None else None


def parse_verdict(text: str) -> Verdict:
    """Read a pairwise judge's answer. `winner` is None when nothing usable is in `text`."""
    text = text or ""
    leading, objects = _objects(text)
    for obj in ([leading] if leading else []) + objects[::-1]:
        verdict = _verdict_from(obj)
        if verdict is not None:
            return verdict
    marks = _MT_BENCH.findall(text)
    if marks:
        return Verdict(winner={"A": "a", "B": "b", "C": "tie"}[marks[-1]], rationale=text)
    marks = _PROMETHEUS_PAIR.findall(text)
    if marks:
        return Verdict(winner=marks[-1].lower(), rationale=text)
    return Verdict()


def _score_from(obj: dict, wanted: list[str] | None) -> Score | None:
    keys = _lower(obj)
    aspects = keys.get("scores", keys.get("aspects"))
    aspects = {str(k): n for k, v in aspects.items() if (n := _number(v)) is not None} \
        if isinstance(aspects, dict) else {}
    if wanted:  # a rubric: only its aspects count, and their mean is the score
        aspects = {k: v for k, v in aspects.items() if k in wanted}
    score = sum(aspects.values()) / len(aspects) if wanted and aspects else None
    if score is None:
        score = _number(keys.get("score", keys.get("rating", keys.get("overall"))))
    if score is None and aspects:
        score = sum(aspects.values()) / len(aspects)
    rationale = keys.get("rationale", keys.get("explanation"))
    return Score(score=score, aspects=aspects, rationale=None if rationale is None else str(rationale)) \
        if score is not None else None


def parse_score(text: str, aspects: list[str] | None = None) -> Score:
    """Read a pointwise judge's answer. With `aspects` (a rubric), the score is the mean of those aspects'
    scores. `score` is None when nothing usable is in `text`."""
    text = text or ""
    leading, objects = _objects(text)
    for obj in ([leading] if leading else []) + objects[::-1]:
        score = _score_from(obj, aspects)
        if score is not None:
            return score
    for pattern in (_RATING, _PROMETHEUS_SCORE):
        marks = pattern.findall(text)
        if marks:
            last = marks[-1]
            value = next(v for v in last if v) if isinstance(last, tuple) else last
            return Score(score=float(value), rationale=text)
    return Score()
