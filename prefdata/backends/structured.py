"""Structured output: check an answer against the request's JSON Schema, safely, with a bounded retry.

Backends use their native mechanism first (OpenAI `response_format`, Anthropic forced tool use, vLLM
structured-output decoding). Servers that ignore it, and backends without one, get the schema in the
prompt. Either way the answer is parsed as data (json / json_repair, never eval) and validated with
`jsonschema` when it is installed; an answer that fails is asked again, at most `retries` times, with
the schema in the prompt and a new seed. One that still fails comes back as an `invalid_json` error.

An answer is hostile input: `loads` reads it in bounded time and depth. Strict `json` runs first (C code;
it stops past Python's recursion limit with an error, not a crash); only text of at most REPAIR_CHARS
and nesting at most MAX_DEPTH goes to `json_repair`, which is pure Python (about 4 µs a character) and
took 67 s on `'{"' * 250` on its own; a value nested deeper than MAX_DEPTH is refused before
`jsonschema` (which recurses per level) sees it; and an object naming a key twice is refused rather than
read as its last value.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Callable, Sequence

from prefdata.backends.base import ChatRequest, ChatResponse

MAX_CHARS = 200_000  # longest answer read at all (a JSON answer is bounded by max_tokens anyway)
MAX_DEPTH = 32  # deepest nesting of a JSON answer
REPAIR_CHARS = 2_000  # longest text handed to json_repair
DUPLICATE = "duplicate key"  # an object that names a key twice is refused, not read as its last value
_NESTING = re.compile(r'\\.|[][{}"]', re.DOTALL)  # escapes, brackets and double quotes


def instruction(schema_text: str) -> str:
    return f"Reply with only a JSON object, no other text, that matches this JSON Schema:\n{schema_text}"


def in_prompt(request: ChatRequest, attempt: int) -> ChatRequest:
    """The request with the schema appended to its system message, and a seed of its own for this attempt."""
    note = instruction(request.json_schema or "{}")
    messages = list(request.messages)
    if messages and messages[0][0] == "system":
        if note not in messages[0][1]:
            messages[0] = ("system", f"{messages[0][1]}\n\n{note}")
    else:
        messages.insert(0, ("system", note))
    params = replace(request.params, seed=request.params.seed + 7919 * attempt)
    return replace(request, messages=tuple(messages), params=params)


def unfenced(text: str) -> str:
    """The text inside a Markdown code fence (```json ... ```), or the text itself. String operations: the
    regex this replaces backtracked for 88 s on a fence followed by 5,000 spaces."""
    body = text.strip()
    if len(body) >= 6 and body.startswith("```") and body.endswith("```"):
        inner = body[3:-3]
        return (inner[4:] if inner.startswith("json") else inner).strip()
    return body


def nesting(text: str, limit: int) -> int:
    """The deepest bracket nesting of `text` outside double-quoted strings; counting stops past `limit`."""
    depth = deepest = 0
    quoted = False
    for match in _NESTING.finditer(text):
        token = match.group()
        if quoted:
            quoted = token != '"'  # an escape is a two-character token, never a closing quote
        elif token == '"':
            quoted = True
        elif token in ("{", "["):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > limit:
                break
        elif token in ("}", "]"):
            depth = max(0, depth - 1)
    return deepest


def _deeper_than(value: object, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class _Duplicate(ValueError):
    pass


def _unique(pairs: list[tuple[str, object]]) -> dict:
    value = dict(pairs)
    if len(value) < len(pairs):
        seen: set[str] = set()
        raise _Duplicate(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return value


def loads(text: str, *, max_depth: int = MAX_DEPTH, repair: bool = True) -> tuple[object | None, str | None]:
    """(value, None) for JSON text (sloppy JSON repaired when short), else (None, why); never raises."""
    if len(text) > MAX_CHARS:
        return None, f"answer of {len(text)} characters, longer than {MAX_CHARS}"
    try:
        value = json.loads(text, object_pairs_hook=_unique)
    except _Duplicate as duplicate:  # JSON, but ambiguous: which value was meant is not ours to guess
        return None, f"{DUPLICATE} {str(duplicate)[:40]!r}"
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError, and so is an int of 4,300+ digits
        if not repair or len(text) > REPAIR_CHARS:
            return None, "not JSON" if not repair else f"not JSON ({len(text)} characters, too long to repair)"
        if nesting(text, max_depth) > max_depth:
            return None, f"nested deeper than {max_depth}"
        import json_repair

        try:  # a tolerant parser, never an evaluator; it is third-party code on hostile text, so nothing escapes
            value = json_repair.loads(text)
        except Exception as exc:  # noqa: BLE001
            return None, f"not JSON ({type(exc).__name__})"
        if value in ("", None) or (isinstance(value, (dict, list)) and not value and text.strip() not in ("{}", "[]")):
            return None, "not JSON"
    if _deeper_than(value, max_depth):
        return None, f"nested deeper than {max_depth}"
    return value, None


def parse(text: str | None, schema: dict) -> tuple[object | None, str | None]:
    """(value, None) when `text` holds JSON matching `schema`, else (None, why). Never raises."""
    if text is None:
        return None, "no answer"
    value, why = loads(unfenced(text))
    if why is not None:
        return None, why
    try:
        import jsonschema
    except ImportError:  # a minimal check without it: the type and the required keys of an object
        if schema.get("type") == "object":
            if not isinstance(value, dict):
                return None, "not a JSON object"
            missing = [k for k in schema.get("required", []) if k not in value]
            return (None, f"missing {missing}") if missing else (value, None)
        return value, None
    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    except (RecursionError, ValueError) as exc:  # a bounded value, but the schema is not ours to trust either
        return None, f"schema check failed: {type(exc).__name__}"
    return (None, f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"[:200]) if error \
        else (value, None)


def settle(answer: ChatResponse, schema: dict) -> tuple[ChatResponse, bool]:
    """The answer with canonical JSON text when valid; `ok` says whether it was."""
    if answer.error is not None:
        return answer, True  # a transport failure is not retried here (the HTTP retries already were)
    value, why = parse(answer.text, schema)
    if why is None:
        return replace(answer, text=json.dumps(value, ensure_ascii=False)), True
    return replace(answer, error=f"invalid_json: {why}"), False


def add_usage(answer: ChatResponse, earlier: ChatResponse) -> ChatResponse:
    """Every attempt is paid for: the final answer carries the tokens of all of them."""
    return replace(answer, tokens_in=answer.tokens_in + earlier.tokens_in,
                   tokens_out=answer.tokens_out + earlier.tokens_out)


def check_batch(run: Callable[[Sequence[ChatRequest]], list[ChatResponse]], requests: Sequence[ChatRequest],
                answers: list[ChatResponse], retries: int) -> list[ChatResponse]:
    """The bounded structured-output retry for batch backends: failures are asked again, schema in the prompt."""
    answers = list(answers)
    status = {}
    for i, request in enumerate(requests):
        if request.json_schema is not None:
            answers[i], status[i] = settle(answers[i], request.schema)
    for attempt in range(1, retries + 1):
        redo = [i for i, ok in status.items() if not ok]
        if not redo:
            break
        again = run([in_prompt(requests[i], attempt) for i in redo])
        for i, answer in zip(redo, again):
            answers[i], status[i] = settle(add_usage(answer, answers[i]), requests[i].schema)
    return answers
