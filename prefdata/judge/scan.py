"""Find the JSON objects in a judge's free text, in bounded time and depth.

A judge's answer is hostile input: `'{' * 300` made json_repair raise, and `'{"' * 250` took it 67 s. So
one linear pass over at most MAX_CHARS characters finds the top-level `{...}` spans (quoted strings
skipped with str.find; `{` and `[` both nest), and nothing recurses. A span nested deeper than MAX_DEPTH,
more than MAX_TOKENS brackets and quotes, or more than MAX_OBJECTS spans stop the scan, and
`Scan.stopped` says why (the caller treats the rest as unread).
A span is parsed only when its text holds a key the caller asks for (`wanted`, lower case), by strict `json` first,
then by `json_repair` on at most REPAIR_CHARS of it, and repairs share REPAIR_BUDGET characters per
text: json_repair is pure Python, about 4 µs a character.

A single quote opens a quoted string only where JSON puts a key or value (after `{`, `[`, `,` or `:`),
as in a Python-style dict; elsewhere it is an apostrophe (`it's`) and leaves the scan in step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

from prefdata.backends.structured import DUPLICATE, loads

MAX_CHARS = 32_000  # longest judge answer read; a longer one is unreadable unless it starts with its verdict
MAX_DEPTH = 8  # a verdict nests two levels (pointwise: {"scores": {...}})
MAX_OBJECTS = 64
REPAIR_CHARS = 1_000
REPAIR_BUDGET = 2_000
MAX_TOKENS = 4_096  # brackets and quotes looked at per text (a quoted string counts one)
_TOKENS = re.compile(r"""\\.|[][{}"']""", re.DOTALL)  # an escape outside a string is skipped whole
_OPENERS = "{[,:"  # where a single quote starts a quoted string


@dataclass
class Found:
    start: int
    end: int
    value: dict | None  # the parsed object; None when it was not parsed or is not an object
    closed: bool = True  # False: it runs to the end of the text (cut off, or an unbalanced quote ate the rest)
    partial: bool = False  # only a repaired prefix was read (the span is longer than REPAIR_CHARS)
    unread: bool = False  # it holds a wanted key but could not be read (not JSON, or the repair budget spent)


@dataclass
class Scan:
    text: str
    wanted: tuple[str, ...]  # lower-case keys: a span without any of them is not parsed
    stopped: str | None = None  # too_long, too_deep, too_complex, too_many_objects: the rest is unread
    budget: int = REPAIR_BUDGET
    tokens: int = 0
    count: int = 0  # objects found so far

    def __post_init__(self) -> None:
        if len(self.text) > MAX_CHARS:
            self.stopped = "too_long"
            self.text = self.text[:MAX_CHARS]

    def objects(self) -> Iterator[Found]:
        """Each top-level object in order (lazily: a caller that has its answer stops early)."""
        position = 0
        while (start := self.text.find("{", position)) >= 0:
            if self.count == MAX_OBJECTS:
                self.stopped = self.stopped or "too_many_objects"
                return
            ended = self._end(start)
            if ended is None:
                return
            end, closed = ended
            found = self._read(start, end)
            found.closed = closed
            self.count += 1
            yield found
            position = end

    def _end(self, start: int) -> tuple[int, bool] | None:
        """(index just past the bracket closing the object at `start`, True), or (the text's end, False)
        when nothing closes it; None when it nests deeper than MAX_DEPTH or the token budget is spent."""
        text, depth, position = self.text, 0, start
        while (match := _TOKENS.search(text, position)) is not None:
            token, position = match.group(), match.end()
            if not self._spend():
                return None
            if token == '"' or (token == "'" and _after_opener(text, match.start(), start)):
                position = self._string_end(position, token)
                if position is None:
                    break
            elif token in ("{", "["):
                depth += 1
                if depth > MAX_DEPTH:
                    self.stopped = "too_deep"
                    return None
            elif token in ("}", "]"):
                depth -= 1
                if depth == 0:
                    return position, True
        return len(text), False

    def _spend(self) -> bool:
        self.tokens += 1
        if self.tokens > MAX_TOKENS:
            self.stopped = "too_complex"
        return self.tokens <= MAX_TOKENS

    def _string_end(self, position: int, quote: str) -> int | None:
        """Index just past the quote closing the string whose text starts at `position`; None when none does
        (or the token budget is spent). Searched with str.find, not a regex: a regex that fails on
        `'\\"' * 16000` backtracks for 50 ms. Each escaped quote on the way costs a token."""
        text = self.text
        while (found := text.find(quote, position)) >= 0:
            before = text[position:found]
            if (len(before) - len(before.rstrip("\\"))) % 2 == 0:  # not escaped
                return found + 1
            if not self._spend():
                return None
            position = found + 1
        return None

    def _read(self, start: int, end: int) -> Found:
        span = self.text[start:end]
        lowered = span.lower()  # plain substring tests: a case-blind regex alternation is ~50x slower
        if not any(key in lowered for key in self.wanted):
            return Found(start, end, None)
        value, why = loads(span, repair=False)
        partial = False
        if why is not None and why.startswith(DUPLICATE):
            return Found(start, end, None, unread=True)
        if why is not None:
            piece = span[:REPAIR_CHARS]
            if len(piece) > self.budget:
                return Found(start, end, None, unread=True)
            self.budget -= len(piece)
            value, why = loads(piece, max_depth=MAX_DEPTH)
            partial = len(span) > REPAIR_CHARS
        if isinstance(value, list):  # json_repair reads some broken objects as a list holding them
            value = next((v for v in value if isinstance(v, dict)), None)
        if not isinstance(value, dict):
            return Found(start, end, None, unread=True)
        return Found(start, end, value, partial=partial)


def _after_opener(text: str, index: int, floor: int) -> bool:
    """Whether the last non-space character before `index` (not before `floor`) is one of `{[,:`."""
    index -= 1
    while index > floor and text[index] in " \t\r\n":
        index -= 1
    return text[index] in _OPENERS
