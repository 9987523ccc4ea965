"""JSON text in and out, strictly.

In: text from a file is hostile. `loads` bounds integer length (`MAX_INT_DIGITS`) and nesting (Python's own
limit, reported as ours), refuses duplicate keys, and raises `JsonProblem` (a message and a countable reason)
instead of RecursionError or ValueError; `check` then bounds a record's nesting to `MAX_DEPTH` levels and
refuses lone surrogates (`"\\ud800"` decodes to a string no UTF-8 file, Polars or Arrow can hold).

Out: `dumps` writes strict JSON (RFC 8259) for every `--json` output: NaN and ±inf become null, never the
bare `NaN` that `json.dumps` writes by default and strict parsers refuse.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from typing import Any

MAX_DEPTH = 64        # levels of arrays and objects in one record (the record itself is level 1)
MAX_INT_DIGITS = 100  # digits of one integer literal (int() is quadratic in them; Python stops at 4,300)
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONG_INT = re.compile(r"\d{%d,}" % (MAX_INT_DIGITS + 1))


class JsonProblem(ValueError):
    """Text that is not JSON we accept. `reason` is a countable drop reason; `line`/`column` where known."""

    def __init__(self, message: str, reason: str = "malformed_record", *, line: int | None = None,
                 column: int | None = None, field: str | None = None, decode_error: str | None = None):
        self.message, self.reason, self.line, self.column, self.field = message, reason, line, column, field
        self.decode_error = decode_error  # json's own message, for a malformed document
        super().__init__(message)


def _int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise JsonProblem(f"an integer of {len(text.lstrip('-'))} digits (the limit is {MAX_INT_DIGITS})",
                          "number_too_long")
    return int(text)


class _Duplicates(dict):
    """An object that named a key twice, kept (marked) while a whole document is parsed, so that `check` can
    refuse the one record holding it rather than the document."""

    key: str = ""


def _repeated(pairs: list[tuple[str, Any]]) -> str:
    seen: set[str] = set()
    return next(k for k, _ in pairs if k in seen or seen.add(k))


def _duplicate(key: str, field: str | None = None) -> JsonProblem:
    return JsonProblem(f"duplicate key {key!r} in one object", "duplicate_key", field=field or key)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # json keeps the last silently; a record saying two things is refused
        raise _duplicate(_repeated(pairs))
    return obj


def _marked_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        obj = _Duplicates(obj)
        obj.key = _repeated(pairs)
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_int=_int)
_MARKING = json.JSONDecoder(object_pairs_hook=_marked_object, parse_int=_int)


def _where(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def loads(text: str, *, mark_duplicates: bool = False) -> Any:
    """Parse JSON text; any problem is a `JsonProblem`. With `mark_duplicates` (a document of many records),
    an object naming a key twice is kept, marked, for `check` to refuse with the record holding it."""
    try:
        return (_MARKING if mark_duplicates else _DECODER).decode(text)
    except JsonProblem as problem:
        if problem.reason == "number_too_long" and (found := _LONG_INT.search(text)):
            problem.line, problem.column = _where(text, found.start())
        raise
    except json.JSONDecodeError as exc:
        where = f"{exc.msg.removesuffix(' at')} at column {exc.colno}"  # "Unterminated string starting at"
        raise JsonProblem(f"malformed JSON ({where})", line=exc.lineno, column=exc.colno,
                          decode_error=exc.msg) from None
    except RecursionError:
        raise JsonProblem(f"nested more than {MAX_DEPTH} levels deep", "too_deep") from None


def _path(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _walk(value: Any, path: str, depth: int, strings: bool) -> JsonProblem | None:
    if isinstance(value, str):
        if strings and _SURROGATE.search(value):
            return JsonProblem("a lone surrogate (\\ud800-\\udfff) is not a character", "lone_surrogate",
                               field=path or None)
        return None
    if isinstance(value, _Duplicates):
        return _duplicate(value.key, _path(path, value.key))
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    if depth > MAX_DEPTH:
        return JsonProblem(f"nested more than {MAX_DEPTH} levels deep", "too_deep", field=path or None)
    for key, item in items:
        if strings and isinstance(key, str) and _SURROGATE.search(key):
            return JsonProblem("a lone surrogate (\\ud800-\\udfff) in a key", "lone_surrogate", field=path or None)
        found = _walk(item, _path(path, key), depth + 1, strings)
        if found is not None:
            return found
    return None


def has_surrogate_escape(text: str) -> bool:
    """Whether JSON text spells a surrogate (`\\ud800`...): only then can a parsed string hold a lone one."""
    return _SURROGATE_ESCAPE.search(text) is not None


def duplicated_key(value: Any) -> str | None:
    """The key a marked object named twice, or None."""
    return value.key if isinstance(value, _Duplicates) else None


def check(value: Any, text: str | None = None, *, strings: bool = True) -> JsonProblem | None:
    """The first problem of a parsed record (nested too deep, a lone surrogate), or None. Given the record's
    `text`, a record that can have neither (few brackets, no surrogate escape) is not walked at all; with
    `strings=False` strings are not searched (the text they came from spells no surrogate)."""
    if text is not None:
        strings = has_surrogate_escape(text)
        if not strings and text.count("[") + text.count("{") <= MAX_DEPTH:
            return None
    found = _walk(value, "", 1, strings)
    if found is not None and found.reason == "too_deep" and found.field:
        found.field = re.split(r"[.\[]", found.field, maxsplit=1)[0]  # the record's field, not 64 levels of path
    return found


def _finite(value: Any) -> Any:
    if isinstance(value, str):
        # a path given on the command line may hold undecodable bytes (as surrogates): show them escaped
        return value.encode("utf-8", "backslashreplace").decode() if _SURROGATE.search(value) else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, dict):
        return {_finite(str(k)): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):  # float, numpy floats
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def dumps(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON for machines: non-finite numbers are null; other objects are written as text."""
    return json.dumps(_finite(value), indent=indent, ensure_ascii=False, allow_nan=False, default=str)
