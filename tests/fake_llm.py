"""A controllable local LLM server on 127.0.0.1 for tests: OpenAI chat completions and Anthropic Messages.

Answers are deterministic functions of the request (so a re-run can be compared), and the server
records every request. Faults are scripted: a queue of faults served to the next requests in turn
(`429` with Retry-After, `500`, `529`, `timeout`, `truncate`, `badjson`, `400`), requests whose text
holds ALWAYS500 always fail, those holding ECHO_AUTH are refused with their credentials echoed in the
error (a leak test), and `hang_after` answers that many requests, then holds the rest
unanswered until `release()` (to kill a client mid-run); `fail_if` and `script` (functions of the request body)
fail chosen requests or answer them with chosen text. Run as a script, it serves until killed.

Asked for `logprobs` (OpenAI), it returns real-shaped `choices[0].logprobs.content`: the served text cut
into word, digit and punctuation tokens (digits one per token, as Llama-family tokenizers do, so `10` is
two tokens), each with a log-probability and `top_logprobs` alternatives derived from the text (A/B/tie
for a verdict letter, neighbouring digits for a digit). A server that repeats a prefill (this one does)
sends the tokens of the repeated prefill too; the client trims them with the text. `logprobs_payload`,
when set, is served as `choices[0].logprobs` verbatim (hostile payloads).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def digest(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def text_of(body: dict) -> str:
    parts = [body.get("system") or ""]
    for m in body.get("messages", []):
        content = m["content"]
        parts.append(content if isinstance(content, str) else json.dumps(content))
    return "\n".join(parts)


_RUBRIC = re.compile(r"Rate the answer on each aspect from 1 to (\d+):")


def answer_text(body: dict) -> str:
    """A deterministic answer: a verdict for judge prompts, JSON when the schema is in the prompt, else prose."""
    text = text_of(body)
    key = digest(body)
    if "impartial judge" in text and (rubric := _RUBRIC.search(text)):  # a pointwise judge: a score per aspect
        scale = int(rubric.group(1))
        aspects = re.findall(r"^- (\w+):", text[rubric.end():], re.MULTILINE)
        scores = {a: int(key[2 * i:2 * i + 2], 16) % scale + 1 for i, a in enumerate(aspects[:8])}
        return json.dumps({"scores": scores, "rationale": f"planted scores {key[:6]}"})
    if "impartial judge" in text:
        winner = "A" if int(key, 16) % 2 else "B"
        return json.dumps({"winner": winner, "score_a": 7 if winner == "A" else 4,
                           "score_b": 4 if winner == "A" else 7, "rationale": f"planted verdict {key[:6]}"})
    if "matches this JSON Schema" in text:
        return json.dumps({"name": "planted", "score": 3})
    last = [m for m in body.get("messages", []) if m["role"] == "user"][-1]["content"]
    return f"Answer {key[:8]} (seed {body.get('seed')}, t={body.get('temperature')}) to: {str(last)[:60]}"


class FakeLLM:
    def __init__(self, *, delay_s: float = 0.0, api_key: str | None = None):
        self.delay_s = delay_s
        self.api_key = api_key  # when set, requests must carry it
        self.faults: deque[str] = deque()
        self.hang_after: int | None = None
        self.judge_answer: str | None = None  # when set, every judge prompt gets this text
        self.logprobs_payload: object = None  # when set, served as choices[0].logprobs when logprobs are asked
        self.script = None  # when set: a function of the request body; the text it returns (not None) is served
        self.fail_if = None  # when set: a function of the request body; requests it says True to get a 500
        self.received: list[dict] = []  # every request: path, body, headers, time
        self.answered: Counter[str] = Counter()  # request digest -> times answered with a 200
        self._granted = 0  # requests let through to an answer
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._phase = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeLLM":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        """Let held requests go; they close without an answer (their client is gone)."""
        self._phase += 1
        self._release.set()

    def bodies(self, path: str = "") -> list[dict]:
        return [r["body"] for r in self.received if r["path"].endswith(path)]

    # ---- request handling ----
    def decide(self, body: dict) -> str:
        with self._lock:
            if "ALWAYS500" in text_of(body) or (self.fail_if is not None and self.fail_if(body)):
                return "500"
            if self.faults:
                return self.faults.popleft()
            # Counted when granted, not when answered: concurrent requests must not all slip past the limit.
            if self.hang_after is not None and self._granted >= self.hang_after:
                return "hang"
            self._granted += 1
            return "ok"


def _handler(fake: FakeLLM):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, status: int, payload: dict | str, headers: dict | None = None) -> None:
            data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            with fake._lock:
                fake.received.append({"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "time": time.monotonic()})
                fake.inflight += 1
                fake.max_inflight = max(fake.max_inflight, fake.inflight)
            try:
                self._serve(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout, killed)
                pass
            finally:
                with fake._lock:
                    fake.inflight -= 1

        def _serve(self, body: dict) -> None:
            anthropic = self.path.endswith("/messages")
            bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
            given = (self.headers.get("x-api-key") or bearer) if anthropic else bearer
            if "ECHO_AUTH" in text_of(body):  # refused, credentials echoed back (as some proxies do)
                return self._send(401, {"error": {"message": f"refused: Authorization: {self.headers.get('authorization')}"
                                                              f"; x-api-key: {self.headers.get('x-api-key')}"}})
            if fake.api_key and given != fake.api_key:
                return self._send(401, {"error": {"message": f"Incorrect API key provided: {given}"}})
            fault = fake.decide(body)
            if fault == "hang":
                phase = fake._phase
                fake._release.wait(120)
                if fake._phase != phase:  # released after its client was killed: no answer
                    self.close_connection = True
                    return
                fault = "ok"
            if fault == "429":
                return self._send(429, {"error": {"message": "slow down"}}, {"retry-after": "1"})
            if fault in ("500", "529", "400"):
                return self._send(int(fault), {"error": {"message": f"planted {fault}"}})
            if fault == "timeout":
                time.sleep(1.5)
            if fault == "truncate":
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", "500")
                self.end_headers()
                self.wfile.write(b'{"id": "x", "choices": [')
                self.wfile.flush()
                self.close_connection = True
                return
            if fault == "badjson":
                return self._send(200, "{this is not json")
            if fake.delay_s:
                time.sleep(fake.delay_s)
            judging = fake.judge_answer is not None and "impartial judge" in text_of(body)
            scripted = fake.script(body) if fake.script is not None else None
            text = scripted if scripted is not None else fake.judge_answer if judging else answer_text(body)
            self._send(200, _anthropic(body, text) if anthropic else _openai(body, text, fake.logprobs_payload))
            with fake._lock:
                fake.answered[digest(body)] += 1

    return Handler


_TOKENS = re.compile(r"\s*[^\W\d]+|\s*\d|\s*[^\w\s]+|\s+")  # words, single digits, punctuation runs


def _alternatives(token: str) -> list[str]:
    """Two plausible other tokens in the same place, with the token's leading blanks."""
    core = token.lstrip()
    blanks = token[:len(token) - len(core)]
    if core in ("A", "B", "tie"):
        return [blanks + c for c in ("A", "B", "tie") if c != core]
    if core.isdigit():
        d = int(core)
        return [blanks + str(d + 1 if d < 9 else d - 1), blanks + str(d - 1 if d > 1 else d + 2)]
    return [blanks + (core.upper() if core.upper() != core else core.lower() + "x"), blanks + core + "s"]


def logprobs_of(text: str, top: int) -> dict:
    """OpenAI's `choices[0].logprobs` for `text`: each token's probability is 0.5 to 0.95, derived from the
    text and the token's place; the rest of the mass goes 2:1 to its two alternatives."""
    content = []
    for i, token in enumerate(_TOKENS.findall(text)):
        h = int(hashlib.sha256(f"{i}:{text}".encode()).hexdigest()[:8], 16)
        p = 0.5 + 0.45 * (h % 1000) / 999
        ranked = [(token, p)] + list(zip(_alternatives(token), ((1 - p) * 2 / 3, (1 - p) / 3)))
        content.append({"token": token, "logprob": math.log(p), "bytes": list(token.encode()),
                        "top_logprobs": [{"token": t, "logprob": math.log(q), "bytes": list(t.encode())}
                                         for t, q in ranked[:top]]})
    return {"content": content, "refusal": None}


def _openai(body: dict, text: str, payload: object = None) -> dict:
    tokens_in = len(text_of(body)) // 4
    max_tokens = body.get("max_tokens") or 10**6
    words = text.split(" ")
    finish = "length" if len(words) > max_tokens else "stop"
    text = " ".join(words[:max_tokens])
    choice = {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}
    if body.get("logprobs"):
        choice["logprobs"] = payload if payload is not None else logprobs_of(text, body.get("top_logprobs") or 0)
    return {"id": "chatcmpl-" + digest(body), "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [choice],
            "usage": {"prompt_tokens": tokens_in, "completion_tokens": len(text.split(" ")),
                      "total_tokens": tokens_in + len(text.split(" "))}}


def _anthropic(body: dict, text: str) -> dict:
    usage = {"input_tokens": len(text_of(body)) // 4, "output_tokens": len(text.split(" "))}
    base = {"id": "msg_" + digest(body), "type": "message", "role": "assistant", "model": body["model"],
            "stop_sequence": None, "usage": usage}
    if body.get("tool_choice", {}).get("type") == "tool":
        tool = body["tool_choice"]["name"]
        props = next(t for t in body["tools"] if t["name"] == tool)["input_schema"].get("properties", {})
        planted = {k: (3 if v.get("type") in ("integer", "number") else "planted") for k, v in props.items()}
        if "impartial judge" in text_of(body):  # a judge: its verdict as the tool input, when it is an object
            try:
                verdict = json.loads(text)
            except ValueError:
                verdict = None
            planted = verdict if isinstance(verdict, dict) else planted
        return {**base, "stop_reason": "tool_use",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": planted}]}
    last = body["messages"][-1]
    if last["role"] == "assistant":  # a prefill: continue it
        text = "continued after the prefill"
    return {**base, "stop_reason": "end_turn", "content": [{"type": "text", "text": text}]}


if __name__ == "__main__":  # python tests/fake_llm.py [delay_s]: serve until killed, print the port
    with FakeLLM(delay_s=float(sys.argv[1]) if len(sys.argv) > 1 else 0.0) as served:
        print(served.port, flush=True)
        threading.Event().wait()
