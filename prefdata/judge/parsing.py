"""Turn a judge's text into a `Verdict` (pairwise) or a `Score` (pointwise) without ever executing it.

The text is hostile: it may quote the answers it judges, and those may plant verdicts. What is read:
JSON objects anywhere in the text (found by `scan` in bounded time and depth, sloppy JSON repaired by
json_repair, keys `winner` / `verdict` / `better`, `score_a`, `score_b`, `rationale`; pointwise `scores`
per aspect, `score` / `rating` / `overall`), and the marks of established judge prompts: MT-Bench `[[A]]` /
`[[B]]` / `[[C]]` and `Rating: [[N]]`, Prometheus `[RESULT] A` / `[RESULT] N`.

Which verdict counts:
1. An object at the very start of the answer (after blanks or a ```json fence) that holds a verdict is the
   verdict; what follows it is not read. With a prefill (`{"winner": "`) or native structured output, the
   judge's answer starts with that object by construction: it is the judge's own, and text after it can
   only be rambling or quoted answers.
2. Otherwise every verdict in the text counts: each verdict object, each mark, each `winner` / `verdict` /
   `better` key followed by an allowed label and each `score_a` / `score_b` pair, anywhere, even inside a
   quoted string. A judge that quotes an answer quotes its planted verdict too, before or after its own:
   taking the first or the last verdict hands the attacker one of those two shapes. So verdicts that
   disagree make the answer unreadable (`conflicting_verdicts`), and so does any verdict object that cannot
   be read, beside the others (`invalid_winner`, `unreadable_object`, ...); the judge is re-asked. Verdicts
   that agree give that verdict, scores and rationale from the last object. Pointwise the same: scores
   that differ are `conflicting_scores`.
3. A winner is one of the allowed spellings, case and blanks aside: `a`, `answer a`, `assistant a`,
   `response a`, `[[a]]` (and the same for b), `tie`, `c`, `[[c]]`, `equal`, `both`, `draw`. Anything else
   (`Dance`, a hex string, a number, `""`, null) makes the object unreadable, `invalid_winner`, even where
   its scores would decide. Without a winner key `score_a` and `score_b` decide; a winner its own scores
   contradict is `conflicting_verdicts`; an object that gives a key twice (`winner`, `Winner`) with
   different values is `unreadable_object`. A score is a finite number, or a string holding a plain decimal
   number; not a boolean, not NaN or infinity, and within 1..scale when the caller gives the scale; else
   `invalid_score`.

Nothing raises: an unreadable text gives `winner` / `score` None and `error` "reason: detail", the reason
one of no_verdict / no_score, conflicting_verdicts / conflicting_scores, invalid_winner, invalid_score,
unreadable_object, too_long, too_deep, too_complex, too_many_objects (the limits of `scan`), parse_error.
"""

from __future__ import annotations

import functools
import math
import re
from itertools import chain
from typing import Any, Callable, Iterator, Literal

from pydantic import BaseModel, Field

from prefdata.judge.scan import MAX_CHARS, MAX_DEPTH, MAX_OBJECTS, MAX_TOKENS, Found, Scan

Winner = Literal["a", "b", "tie"]
WINNERS = {"a": "a", "answer a": "a", "assistant a": "a", "[[a]]": "a", "response a": "a",
           "b": "b", "answer b": "b", "assistant b": "b", "[[b]]": "b", "response b": "b",
           "tie": "tie", "c": "tie", "[[c]]": "tie", "equal": "tie", "both": "tie", "draw": "tie"}
_LABEL_KEYS = ("winner", "verdict", "better")
_VERDICT_KEYS = ("winner", "verdict", "better", "score_a", "score_b")
_SCORE_KEYS = ("score", "rating", "overall", "aspects")
_MT_BENCH = re.compile(r"\[\[(A|B|C)\]\]")
_PROMETHEUS_PAIR = re.compile(r"\[RESULT\]\s*\(?\s*(A|B)\b")
# A verdict key followed by a label, anywhere: JSON, Python-style, escaped inside a string, or prose.
_LABEL = re.compile(r"""\b(?:winner|verdict|better)\\?["']?\s*[:=]\s*\\?["']?\s*([^"'\\\n,;{}]{1,40})""",
                    re.IGNORECASE)
_SCORE_AB = re.compile(r"""\bscore_([ab])\\?["']?\s*[:=]\s*\\?["']?\s*(-?\d{1,12}(?:\.\d{1,12})?)""", re.IGNORECASE)
_RATING = re.compile(r"Rating:\s*\[\[\s*(\d+(?:\.\d+)?)\s*\]\]|Rating:\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_PROMETHEUS_SCORE = re.compile(r"\[RESULT\]\s*\(?\s*(\d+(?:\.\d+)?)")
_DECIMAL = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,12})?")
_FENCE = re.compile(r"\s*(?:```(?:json)?\s*)?")


class Verdict(BaseModel):
    winner: Winner | None = None  # None: no verdict could be read, and `error` says why
    score_a: float | None = None
    score_b: float | None = None
    rationale: str | None = None
    error: str | None = None


class Score(BaseModel):
    score: float | None = None  # None: no score could be read, and `error` says why
    aspects: dict[str, float] = Field(default_factory=dict)
    rationale: str | None = None
    error: str | None = None


class Unreadable(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")


def _label(value: Any) -> str | None:
    return WINNERS.get(value.strip().lower()) if isinstance(value, str) else None


def _number(value: Any, scale: int | None, name: str) -> float:
    """A valid score, or Unreadable."""
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        value = float(value)
    number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and abs(value) < 1e300 else math.nan  # (an int past float's range would overflow float())
    if not math.isfinite(number) or (scale is not None and not 1 <= number <= scale):
        bound = f" (the scale is 1 to {scale})" if scale is not None else ""
        raise Unreadable("invalid_score", f"{name} is {str(value)[:40]!r}{bound}")
    return number


def _lower(obj: dict) -> dict:
    """The object with lower-case keys; `Winner` and `winner` holding different values is unreadable."""
    keys, names = {}, {}
    for key, value in obj.items():
        lower = key.lower() if isinstance(key, str) else key
        if lower in keys and keys[lower] != value:
            raise Unreadable("unreadable_object", f"the keys {names[lower]!r} and {key!r} disagree")
        keys[lower], names[lower] = value, key
    return keys


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _verdict_from(obj: dict, scale: int | None) -> Verdict | None:
    """The verdict an object states; None when it states none; Unreadable when it states one badly."""
    keys = _lower(obj)
    labels = [keys[k] for k in _LABEL_KEYS if k in keys]
    if not labels and not ("score_a" in keys and "score_b" in keys):
        return None
    winners = {_label(v) for v in labels}
    if None in winners:
        bad = next(v for v in labels if _label(v) is None)
        raise Unreadable("invalid_winner", f"{str(bad)[:40]!r} is not a, b or tie")
    if len(winners) > 1:
        raise Unreadable("conflicting_verdicts", f"one object says {' and '.join(sorted(winners))}")
    scores = [_number(keys[k], scale, k) if keys.get(k) is not None else None for k in ("score_a", "score_b")]
    implied = _implied(*scores)
    winner = winners.pop() if winners else implied or "tie"
    if {winner, implied} == {"a", "b"}:
        raise Unreadable("conflicting_verdicts", f"winner {winner} but its scores favour {implied}")
    rationale = keys.get("rationale", keys.get("explanation", keys.get("reason")))
    return Verdict(winner=winner, score_a=scores[0], score_b=scores[1], rationale=_text(rationale))


def _implied(score_a: float | None, score_b: float | None) -> str | None:
    """The side two scores favour (None when either is missing or they are equal)."""
    if score_a is None or score_b is None or score_a == score_b:
        return None
    return "a" if score_a > score_b else "b"


def _score_pairs(text: str) -> set[str]:
    """The sides favoured by `score_a` / `score_b` pairs anywhere in the text, however they are quoted: each
    score key paired with the next key of the other answer when no brace lies between them."""
    keys = [(m.start(), m.group(1).lower(), float(m.group(2))) for m in _SCORE_AB.finditer(text)]
    sides = set()
    for (start, side, value), (end, other, second) in zip(keys, keys[1:]):
        if side != other and not re.search(r"[{}]", text[start:end]):
            pair = (value, second) if side == "a" else (second, value)
            sides.add(_implied(*pair))
    return sides - {None}


def _score_from(obj: dict, wanted: list[str] | None, scale: int | None) -> Score | None:
    """The score an object states (with a rubric, the mean of its aspects); None when it states none."""
    keys = _lower(obj)
    single = next((k for k in ("score", "rating", "overall") if keys.get(k) is not None), None)
    given = keys.get("scores", keys.get("aspects"))
    given = given if isinstance(given, dict) else {}
    aspects = {str(k): _number(v, scale, str(k)) for k, v in given.items() if not wanted or k in wanted}
    if aspects and (wanted or single is None):
        score = sum(aspects.values()) / len(aspects)
    elif single is not None:
        score = _number(keys[single], scale, single)
    else:
        return None
    return Score(score=score, aspects=aspects, rationale=_text(keys.get("rationale", keys.get("explanation"))))


def _leading(text: str, found: Found) -> bool:
    return _FENCE.match(text).end() == found.start


def _read(text: Any, keys: tuple[str, ...], read: Callable[[dict], Any]) -> tuple[Any, list, Scan]:
    """(the leading object's reading, or None; the readings of every object; the scan)."""
    scan = Scan(text if isinstance(text, str) else "", keys)
    objects: Iterator[Found] = scan.objects()
    first = next(objects, None)
    if first is not None and first.value is not None and _leading(scan.text, first):
        if (leading := read(first.value)) is not None:
            return leading, [], scan
    readings = []
    for found in chain([first] if first is not None else [], objects):
        relevant = found.value is not None or found.unread
        if found.unread or found.partial or (relevant and not found.closed):
            raise Unreadable("unreadable_object", f"the object at character {found.start} could not be read "
                                                  "(not JSON, a key given twice, or cut off)")
        if found.value is not None and (reading := read(found.value)) is not None:
            readings.append(reading)
    if scan.stopped:
        limits = {"too_long": f"longer than {MAX_CHARS} characters", "too_deep": f"nested deeper than {MAX_DEPTH}",
                  "too_complex": f"more than {MAX_TOKENS} brackets and quotes",
                  "too_many_objects": f"more than {MAX_OBJECTS} objects"}
        raise Unreadable(scan.stopped, f"the answer is {limits[scan.stopped]}")
    return None, readings, scan


def _safely(parse: Callable, empty: Callable[[str], BaseModel]) -> Callable:
    @functools.wraps(parse)
    def safe(*args: Any, **kwargs: Any) -> Any:
        try:
            return parse(*args, **kwargs)
        except Unreadable as why:
            return empty(str(why))
        except Exception as exc:  # noqa: BLE001 - a bug meeting hostile text fails this answer, never the run
            return empty(f"parse_error: {type(exc).__name__}")
    return safe


def _parse_verdict(text: str, scale: int | None = None) -> Verdict:
    """Read a pairwise judge's answer. `winner` is None when no single verdict can be read (`error` says why);
    `scale`: scores must lie in 1..scale."""
    leading, verdicts, scan = _read(text, _VERDICT_KEYS, lambda obj: _verdict_from(obj, scale))
    if leading is not None:
        return leading
    marks = [{"A": "a", "B": "b", "C": "tie"}[m] for m in _MT_BENCH.findall(scan.text)]
    marks += [m.lower() for m in _PROMETHEUS_PAIR.findall(scan.text)]
    labels = [w for m in _LABEL.finditer(scan.text) if (w := _label(m.group(1)))]
    winners = {v.winner for v in verdicts} | set(marks) | set(labels)
    if not winners:
        raise Unreadable("no_verdict", "no verdict object or mark")
    sides = winners | (_score_pairs(scan.text) if winners & {"a", "b"} else set())  # scores never contradict a tie
    if len(winners) > 1 or {"a", "b"} <= sides:
        raise Unreadable("conflicting_verdicts", f"the answer holds verdicts for {', '.join(sorted(sides))}")
    return verdicts[-1] if verdicts else Verdict(winner=winners.pop(), rationale=text)


def _parse_score(text: str, aspects: list[str] | None = None, scale: int | None = None) -> Score:
    """Read a pointwise judge's answer. With `aspects` (a rubric), the score is the mean of the scores it gives
    those aspects (others are ignored); `scale`: scores must lie in 1..scale. `score` is None when no single
    score can be read (`error` says why)."""
    leading, scores, scan = _read(text, _SCORE_KEYS, lambda obj: _score_from(obj, aspects, scale))
    if leading is not None:
        return leading
    marks = [_number(m.group(1) or m.group(2), scale, "rating") for m in _RATING.finditer(scan.text)]
    marks += [_number(m, scale, "[RESULT]") for m in _PROMETHEUS_SCORE.findall(scan.text)]
    values = {round(s.score, 9) for s in scores} | {round(m, 9) for m in marks}
    if len(values) > 1:
        raise Unreadable("conflicting_scores", f"the answer holds the scores {', '.join(map(str, sorted(values)))}")
    if not values:
        raise Unreadable("no_score", "no score object or mark")
    return scores[-1] if scores else Score(score=values.pop(), rationale=text)


parse_verdict = _safely(_parse_verdict, lambda why: Verdict(error=why))
parse_score = _safely(_parse_score, lambda why: Score(error=why))
