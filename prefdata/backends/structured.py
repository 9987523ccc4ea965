"""Structured output: check an answer against the request's JSON Schema, safely, with a bounded retry.

Backends use their native mechanism first (OpenAI `response_format`, Anthropic forced tool use, vLLM
structured-output decoding). Servers that ignore it, and backends without one, get the schema in the
prompt. Either way the answer is parsed as data (json / json_repair, never eval) and validated with
`jsonschema` when it is installed; an answer that fails is asked again, at most `retries` times, with
the schema in the prompt and a new seed. One that still fails comes back as an `invalid_json` error.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Callable, Sequence

from prefdata.backends.base import ChatRequest, ChatResponse

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


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


def parse(text: str | None, schema: dict) -> tuple[object | None, str | None]:
    """(value, None) when `text` holds JSON matching `schema`, else (None, why)."""
    if text is None:
        return None, "no answer"
    body = text.strip()
    fenced = _FENCE.match(body)
    body = fenced.group(1) if fenced else body
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        import json_repair

        value = json_repair.loads(body)  # tolerant, and still a parser: it never evaluates anything
        if value in ("", None) or (isinstance(value, (dict, list)) and not value and body not in ("{}", "[]")):
            return None, "not JSON"
    try:
        import jsonschema
    except ImportError:  # a minimal check without it: the type and the required keys of an object
        if schema.get("type") == "object":
            if not isinstance(value, dict):
                return None, "not a JSON object"
            missing = [k for k in schema.get("required", []) if k not in value]
            return (None, f"missing {missing}") if missing else (value, None)
        return value, None
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
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
