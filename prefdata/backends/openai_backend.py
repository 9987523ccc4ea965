"""OpenAI and every OpenAI-compatible server (vLLM's, TGI, llama.cpp's, `transformers serve`) by `base_url`.

The official `openai` SDK's own retries are off (`max_retries=0`): ours (retry.py) honour `Retry-After`,
classify failures and leave a reason on the row.
"""

from __future__ import annotations

import json
from typing import Any

from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.http import HTTPBackend, strip_prefill
from prefdata.backends.retry import Failure

FINISH = {"stop": "stop", "length": "length", "tool_calls": "stop", "function_call": "stop",
          "content_filter": "content_filter"}


class OpenAIBackend(HTTPBackend):
    name = "openai"
    default_key_env = "OPENAI_API_KEY"

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
        if request.json_schema is not None and native:
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "answer", "schema": json.loads(request.json_schema), "strict": True}}
        return body

    async def _attempt(self, request: ChatRequest, native: bool) -> ChatResponse:
        reply = await self._client().chat.completions.create(**self.body(request, native))
        if not getattr(reply, "choices", None):
            raise Failure("bad_response", "no choices in the answer")
        choice = reply.choices[0]
        text = choice.message.content
        if text is None:
            raise Failure("bad_response", f"no text in the answer (finish_reason {choice.finish_reason})")
        usage = reply.usage
        return ChatResponse(strip_prefill(text, request.prefill), FINISH.get(choice.finish_reason or "stop",
                                                                             choice.finish_reason),
                            int(getattr(usage, "prompt_tokens", 0) or 0),
                            int(getattr(usage, "completion_tokens", 0) or 0))
