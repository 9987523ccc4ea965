"""Anthropic's Messages API, with the official `anthropic` SDK (its retries off; ours in retry.py).

Sampling: the temperature is sent where the installed SDK still takes one (1.x; 2.x dropped it).
System messages go in `system`; a prefill is the final assistant turn, which the API continues;
structured output is forced tool use: one tool whose `input_schema` is the schema, `tool_choice` set to it.
"""

from __future__ import annotations

import json
from typing import Any

from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.http import HTTPBackend
from prefdata.backends.retry import Failure

FINISH = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "stop", "max_tokens": "length",
          "refusal": "content_filter"}
TOOL = "answer"


class AnthropicBackend(HTTPBackend):
    name = "anthropic"
    default_key_env = "ANTHROPIC_API_KEY"

    def _make_client(self, api_key: str) -> Any:
        try:
            from anthropic import AsyncAnthropic
        except ImportError:
            from prefdata.errors import PrefdataError

            raise PrefdataError("the anthropic backend needs the 'anthropic' extra: "
                                "pip install 'prefdata[anthropic]'") from None
        return AsyncAnthropic(api_key=api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s)

    def body(self, request: ChatRequest, native: bool) -> dict:
        system = "\n\n".join(content for role, content in request.messages if role == "system")
        messages = [{"role": role, "content": content} for role, content in request.messages if role != "system"]
        body: dict[str, Any] = dict(model=self.model, max_tokens=request.params.max_tokens, messages=messages)
        if self._takes_temperature():
            body["temperature"] = min(request.params.temperature, 1.0)  # the API's range is 0..1
        if system:
            body["system"] = system
        if request.json_schema is not None and native:
            body["tools"] = [{"name": TOOL, "description": "Give the answer.",
                              "input_schema": json.loads(request.json_schema)}]
            body["tool_choice"] = {"type": "tool", "name": TOOL}
        elif request.prefill:  # a prefill and forced tool use do not mix; the schema wins
            body["messages"] = messages + [{"role": "assistant", "content": request.prefill}]
        return body

    def _takes_temperature(self) -> bool:
        """Recent SDKs (2.x) dropped sampling parameters from `messages.create` along with recent models:
        send a temperature only where the installed SDK still has it."""
        import inspect

        from anthropic.resources.messages import AsyncMessages

        return "temperature" in inspect.signature(AsyncMessages.create).parameters

    async def _attempt(self, request: ChatRequest, native: bool) -> ChatResponse:
        return read_reply(await self._client().messages.create(**self.body(request, native)))


def read_reply(reply: Any) -> ChatResponse:
    """A Messages API reply (the SDK's `Message`) as a response; raises `Failure("bad_response")` without content."""
    blocks = getattr(reply, "content", None)
    if blocks is None:
        raise Failure("bad_response", "no content in the answer")
    tool = [b for b in blocks if getattr(b, "type", None) == "tool_use"]
    if tool:
        text = json.dumps(tool[0].input, ensure_ascii=False)
    else:
        text = "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
    usage = reply.usage
    return ChatResponse(text, FINISH.get(reply.stop_reason or "end_turn", reply.stop_reason),
                        int(getattr(usage, "input_tokens", 0) or 0), int(getattr(usage, "output_tokens", 0) or 0))
