"""OpenAI and every OpenAI-compatible server (vLLM's, TGI, llama.cpp's, `transformers serve`) by `base_url`.

The official `openai` SDK's own retries are off (`max_retries=0`): ours (retry.py) honour `Retry-After`,
classify failures and leave a reason on the row.
"""

from __future__ import annotations

import json
import math
from typing import Any

from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.http import HTTPBackend, strip_prefill
from prefdata.backends.retry import Failure

MAX_TOP_LOGPROBS = 20  # OpenAI's maximum `top_logprobs`
MAX_LOGPROB_TOKENS = 8_192  # tokens of a reply read for log-probabilities; a longer list is cut there
FINISH = {"stop": "stop", "length": "length", "tool_calls": "stop", "function_call": "stop",
          "content_filter": "content_filter"}


class OpenAIBackend(HTTPBackend):
    name = "openai"
    default_key_env = "OPENAI_API_KEY"
    gives_logprobs = True  # `logprobs` / `top_logprobs` (judges ask for them to read their confidence)

    def _make_client(self, api_key: str) -> Any:
        try:
            from openai import AsyncOpenAI
        except ImportError:
            from prefdata.errors import PrefdataError

            raise PrefdataError("the openai backend needs the 'openai' extra: pip install 'prefdata[openai]'") from None
        return AsyncOpenAI(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    def body(self, request: ChatRequest, native: bool) -> dict:
        """The request body; the prefill goes as a final assistant message (servers may continue it)."""
        params = request.params
        messages = request.as_messages() + ([{"role": "assistant", "content": request.prefill}]
                                            if request.prefill else [])
        body = dict(model=self.model, messages=messages, max_tokens=params.max_tokens,
                    temperature=params.temperature, top_p=params.top_p, seed=params.seed + request.sample)
        if params.logprobs > 0:
            body.update(logprobs=True, top_logprobs=min(params.logprobs, MAX_TOP_LOGPROBS))
        if request.json_schema is not None and native:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": json.loads(request.json_schema), "strict": True}}
        return body

    async def _attempt(self, request: ChatRequest, native: bool) -> ChatResponse:
        # The SDK's own `post` (auth, headers, its typed errors) with the body as we built it, read as bytes:
        # `chat.completions.create` would first walk the body against its TypedDicts and then build pydantic
        # models of the reply, which together cost about a third of the client's CPU per request
        # (benchmarks/backend_overhead.py) and change nothing in a body of plain strings and numbers.
        raw = await self._client().post("/chat/completions", cast_to=bytes, body=self.body(request, native))
        return read_reply(json.loads(raw), request.prefill)


def read_reply(reply: Any, prefill: str = "") -> ChatResponse:
    """A chat completion (parsed JSON) as a response; raises `Failure("bad_response")` if it is not one."""
    choices = reply.get("choices") if isinstance(reply, dict) else None
    if not choices or not isinstance(choices[0], dict):
        raise Failure("bad_response", "no choices in the answer")
    choice = choices[0]
    text = (choice.get("message") or {}).get("content")
    finish = choice.get("finish_reason") or "stop"
    if not isinstance(text, str):
        raise Failure("bad_response", f"no text in the answer (finish_reason {finish})")
    usage = reply.get("usage") or {}
    answer = strip_prefill(text, prefill)
    return ChatResponse(answer, FINISH.get(finish, finish),
                        int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                        logprobs=read_logprobs(choice.get("logprobs"), len(text) - len(answer)))


def read_logprobs(given: Any, skip: int = 0) -> list | None:
    """`choices[0].logprobs` as ChatResponse.logprobs ([token, logprob, {alternative: logprob}] per token), or
    None when missing or malformed: log-probabilities are extra, they never fail an answer. `skip`: characters
    `strip_prefill` removed from the front of the text (a server that repeated the prefill); the tokens
    covering them go too, so that the tokens' texts joined stay the answer as kept."""
    try:
        content = given.get("content") if isinstance(given, dict) else None
        if not isinstance(content, list) or not content:
            return None
        tokens = []
        for item in content[:MAX_LOGPROB_TOKENS]:
            token, logprob = item.get("token"), item.get("logprob")
            if not isinstance(token, str) or not _finite(logprob):
                return None  # one bad token would shift every position after it: drop them all
            alternatives = {}
            for alt in (item.get("top_logprobs") or [])[:MAX_TOP_LOGPROBS]:
                if isinstance(alt, dict) and isinstance(alt.get("token"), str) and _finite(alt.get("logprob")):
                    alternatives[alt["token"]] = float(alt["logprob"])
            tokens.append([token, float(logprob), alternatives])
        return _trim(tokens, skip)
    except (AttributeError, TypeError, ValueError, OverflowError):  # another shape: no log-probabilities, answer stands
        return None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value <= 0


def _trim(tokens: list, skip: int) -> list | None:
    """The tokens after the first `skip` characters; a token cut in two keeps its tail (and the alternatives
    that share its removed head, cut the same way)."""
    start = 0
    while start < len(tokens) and skip >= len(tokens[start][0]) and skip > 0:
        skip -= len(tokens[start][0])
        start += 1
    tokens = tokens[start:]
    if tokens and skip > 0:
        token, logprob, alternatives = tokens[0]
        head = token[:skip]
        tokens[0] = [token[skip:], logprob, {a[skip:]: lp for a, lp in alternatives.items()
                                             if a.startswith(head) and len(a) > skip}]
    return tokens or None
