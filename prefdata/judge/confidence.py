"""How sure a judge was: its verdict's probability, read from the token log-probabilities of its answer.

Input: `ChatResponse.logprobs` (per generated token `[text, logprob, {alternative: logprob}]`, the texts
joined being the answer as generated) and the request's prefill. The answer is read as `prefill + tokens`,
and only the answer's *leading* JSON object counts: a bounded walk over its members (strings skipped whole,
one nested object for `scores`) finds where the `winner` value, or each aspect's score, starts. That place
must lie in the generated tokens. Text that quotes a verdict (a rationale, prose before the object, the
judged answers in the prompt) is never at that place, so it cannot fake a probability.

Pairwise: at the verdict's token, each alternative is stripped of quotes, blanks and `,}` and counts for
`a`, `b` or `tie` when it spells a non-empty prefix of `A`, `B` or `tie` (case folded: an unconstrained
prefill answer may write `a`; a constrained one can only write the schema's `A`). Their probability mass,
renormalised over the three, gives `p_a`, `p_b`, `p_tie` (in the order shown); `confidence` is the
probability of the verdict the parser read. When the token read there does not spell that verdict, nothing
is returned.

Pointwise (G-Eval): at each aspect's score token, alternatives spelling an integer in 1..scale weigh that
score; `expected` is the probability-weighted mean, `confidence` the probability of the score given.
Multi-digit scores: a tokenizer with `10` as one token gives it directly; one that splits it (`1`, `0`)
makes a `1` ambiguous. When the judge's own token is `1`, the next token's alternatives split its mass
between 10 (those starting with `0`) and 1 (the rest that are not digits); a `1` among the alternatives of
another digit cannot be split and is left out before renormalising.

Bounded and total: at most MAX_TOKENS tokens, MAX_CHARS characters and MAX_ALTERNATIVES alternatives per
token are read (alternatives only at the tokens read), a malformed token (wrong types, NaN, a positive
log-probability) makes the whole list unreadable, a malformed alternative is skipped, and no function here
raises: anything unexpected gives None.
"""

from __future__ import annotations

import math
import re
from itertools import islice
from typing import Any

MAX_TOKENS = 4_096
MAX_CHARS = 32_000
MAX_ALTERNATIVES = 64
MAX_MEMBERS = 64  # members of the leading object walked
_STRIP = " \t\r\n\"',}"
_FENCE = re.compile(r"\s*(?:```(?:json)?\s*)?")
_KEY = re.compile(r'\s*"((?:[^"\\]|\\.){0,64})"\s*:\s*')
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SCALAR = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,12})?(?:[eE][-+]?[0-9]{1,4})?|true|false|null")
_NEXT = re.compile(r"\s*([,}])")
_CLOSE = re.compile(r"\s*}")
_INTEGER = re.compile(r"[0-9]{1,2}")
LABELS = ("a", "b", "tie")


def _tokens(logprobs: Any) -> list[tuple[str, float, dict]] | None:
    """[(token text, logprob, alternatives as given)], or None when a token is malformed (its place would be
    unknown, and so every place after it). Alternatives are checked only where they are read (`_options`)."""
    if not isinstance(logprobs, list) or not logprobs:
        return None
    out, chars = [], 0
    for item in logprobs[:MAX_TOKENS]:
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            return None
        text, logprob, alternatives = item
        if not isinstance(text, str) or not _logprob(logprob) or not isinstance(alternatives, dict):
            return None
        out.append((text, float(logprob), alternatives))
        chars += len(text)
        if chars > MAX_CHARS:
            break
    return out


def _options(token: tuple[str, float, dict]) -> dict[str, float]:
    """A token's alternatives (the first MAX_ALTERNATIVES well-formed ones) and the token itself."""
    text, logprob, alternatives = token
    options = {alt: float(value) for alt, value in islice(alternatives.items(), MAX_ALTERNATIVES)
               if isinstance(alt, str) and _logprob(value)}
    options[text] = max(logprob, options.get(text, -math.inf))
    return options


def _logprob(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) < 1e300
            and math.isfinite(value) and value <= 1e-6)


def value_starts(text: str) -> dict[tuple[str, ...], int]:
    """Where each member's value starts in the leading JSON object of `text` (after a string's opening quote),
    by lower-case key path; one nested level (`scores`). A key given twice is left out (the parser refuses it)."""
    start = _FENCE.match(text).end()
    if not text.startswith("{", start):
        return {}
    found: dict[tuple[str, ...], int] = {}
    twice: set[tuple[str, ...]] = set()
    _walk(text[:MAX_CHARS], start, (), found, twice, [0])
    return {path: at for path, at in found.items() if path not in twice}


def _walk(text: str, position: int, path: tuple, found: dict, twice: set, members: list) -> int | None:
    """Walk the object whose `{` is at `position`; the index past its `}`, or None where the walk stops."""
    position += 1
    if (close := _CLOSE.match(text, position)) is not None:
        return close.end()
    while members[0] < MAX_MEMBERS:
        members[0] += 1
        key = _KEY.match(text, position)
        if key is None:
            return None
        here, position = path + (key.group(1).lower(),), key.end()
        (twice if here in found else set()).add(here)
        if text.startswith('"', position):
            found.setdefault(here, position + 1)
            string = _STRING.match(text, position)
            if string is None:
                return None
            position = string.end()
        elif text.startswith("{", position) and not path:
            found.setdefault(here, -1)  # an object is no value to read, but a second one is a key given twice
            position = _walk(text, position, here, found, twice, members)
            if position is None:
                return None
        elif (scalar := _SCALAR.match(text, position)) is not None:
            found.setdefault(here, position)
            position = scalar.end()
        else:
            return None
        after = _NEXT.match(text, position)
        if after is None:
            return None
        position = after.end()
        if after.group(1) == "}":
            return position
    return None


def _locate(tokens: list, prefill: str, path: tuple[str, ...]) -> tuple[int, int] | None:
    """(index of the generated token holding the value at `path`, characters of that token before it)."""
    at = value_starts(prefill + "".join(t for t, _, _ in tokens)).get(path)
    if at is None or at < len(prefill):
        return None  # not there, or inside the prefill: not the judge's own token
    offset = at - len(prefill)
    for index, (text, _, _) in enumerate(tokens):
        if offset < len(text):
            return index, offset
        offset -= len(text)
    return None


def _label(piece: str) -> str | None:
    piece = piece.strip(_STRIP).lower()
    if piece in ("a", "b"):
        return piece
    return "tie" if piece and "tie".startswith(piece) else None


def _tail(text: str, cut: int) -> str:
    return text[cut:] if cut < len(text) else ""


def pairwise(logprobs: Any, prefill: str, winner: str | None) -> dict[str, float] | None:
    """{p_a, p_b, p_tie, confidence} in the order shown, or None; `winner`: the verdict the parser read."""
    try:
        tokens = _tokens(logprobs)
        where = None
        for key in ("winner", "verdict", "better"):
            if tokens is not None and where is None:
                where = _locate(tokens, prefill, (key,))
        if where is None or winner not in LABELS:
            return None
        index, cut = where
        token, options = tokens[index][0], _options(tokens[index])
        if _label(_tail(token, cut)) != winner:
            return None  # the token there does not spell the verdict read: nothing to say
        mass = dict.fromkeys(LABELS, 0.0)
        for alt, logprob in options.items():
            if (label := _label(alt)) is not None:
                mass[label] += math.exp(logprob)
        total = sum(mass.values())
        if not total > 0:
            return None
        p = {f"p_{label}": min(1.0, mass[label] / total) for label in LABELS}
        return {**p, "confidence": p[f"p_{winner}"]}
    except Exception:  # noqa: BLE001 - hostile data fails this reading, never the stage
        return None


def _score(piece: str, scale: int) -> int | None:
    piece = piece.strip(_STRIP)
    value = int(piece) if _INTEGER.fullmatch(piece) else None
    return value if value is not None and 1 <= value <= scale else None


def _aspect(tokens: list, prefill: str, aspect: str, scale: int, given: float) -> tuple[float, float] | None:
    """(expected score, probability of the score given) at one aspect's score token, or None."""
    where = _locate(tokens, prefill, ("scores", aspect.lower()))
    if where is None:
        return None
    index, cut = where
    token, options = tokens[index][0], _options(tokens[index])
    mine = _score(_tail(token, cut), scale)
    split = None  # share of a `1` that is really the first digit of 10
    if mine == 1 and scale >= 10 and index + 1 < len(tokens):
        nxt = _options(tokens[index + 1])
        zero = sum(math.exp(lp) for alt, lp in nxt.items() if alt.startswith("0"))
        ended = sum(math.exp(lp) for alt, lp in nxt.items() if alt[:1] and not alt[:1].isdigit())
        split = zero / (zero + ended) if zero + ended > 0 else None
        if tokens[index + 1][0].startswith("0"):
            mine = 10
    if mine is None or abs(mine - given) > 1e-9:
        return None
    mass: dict[int, float] = {}
    for alt, logprob in options.items():
        score = _score(alt, scale)
        if score is None or (score == 1 and scale >= 10 and split is None):
            continue  # an unsplittable `1` (1 or 10?) is left out
        if score == 1 and scale >= 10:
            mass[10] = mass.get(10, 0.0) + math.exp(logprob) * split
            mass[1] = mass.get(1, 0.0) + math.exp(logprob) * (1 - split)
        else:
            mass[score] = mass.get(score, 0.0) + math.exp(logprob)
    total = sum(mass.values())
    if not total > 0 or mass.get(mine, 0.0) <= 0:
        return None
    expected = sum(score * m for score, m in mass.items()) / total
    return min(float(scale), max(1.0, expected)), min(1.0, mass[mine] / total)


def pointwise(logprobs: Any, prefill: str, given: dict[str, float], scale: int) -> tuple[float | None, float | None]:
    """(expected score, confidence) over the aspects `given` (aspect: the score the parser read): the means of
    each aspect's expected score and of the probability of its score given; (None, None) unless every aspect
    can be read."""
    try:
        tokens = _tokens(logprobs)
        if tokens is None or not given:
            return None, None
        read = [_aspect(tokens, prefill, aspect, scale, score) for aspect, score in given.items()]
        if any(r is None for r in read):
            return None, None
        return sum(r[0] for r in read) / len(read), sum(r[1] for r in read) / len(read)
    except Exception:  # noqa: BLE001 - hostile data fails this reading, never the stage
        return None, None
