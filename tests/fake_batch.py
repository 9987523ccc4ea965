"""A local Batch API server on 127.0.0.1 for tests: OpenAI's Files + Batches and Anthropic's Message Batches,
close enough for the official SDKs, plus the online chat endpoints (for comparing prices and caches).

Items are answered as tests/fake_llm.py answers them (deterministic; judge prompts get verdicts). A batch reports
`in_progress` on its first look and has ended on the next, unless `hold` is set (then it stays in progress
until `release()`). How the next batches end is scripted in `outcomes`, one `(status, answered)` per batch:
`("expired", 4)` answers the first 4 items and expires the rest, `("cancelled", 2)`, `("failed", 0)` (OpenAI: the
whole batch refused at validation); with none left a batch completes. `fail_if` (a function of an item's body)
makes chosen items fail, `junk` salts the results with hostile lines, `poll_faults` answers that many looks at a
batch with a 503. Result lines come in reverse order, so
a client matching them by position gets them wrong.
"""

from __future__ import annotations

import email.parser
import itertools
import json
import re
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fake_llm import _anthropic, _openai, answer_text

JUNK = [b"this line is not JSON {", b"[1, 2, 3]", b'{"no_custom_id": true}', b'{"custom_id": "r999999"}',
        b'{"custom_id": "not-ours", "result": {"type": "succeeded"}}', b"\xff\xfe not utf-8"]


class FakeBatch:
    def __init__(self):
        self.hold = False
        self.outcomes: deque[tuple[str, int]] = deque()
        self.fail_if = None
        self.junk = False
        self.poll_faults = 0  # the next looks at a batch get a 503
        self.submissions: list[dict] = []  # {"provider", "id", "bodies"} per batch created
        self.polled: Counter[str] = Counter()  # batch id -> looks at it
        self.downloads: Counter[str] = Counter()  # batch id -> result downloads
        self.online: list[dict] = []  # bodies sent to the online chat endpoints
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self._ids = itertools.count(1)
        self._uploads = itertools.count(1)
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeBatch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def release(self) -> None:
        self.hold = False

    def bodies(self, provider: str | None = None, judge: bool | None = None) -> list[list[dict]]:
        """The bodies of each batch submitted (of one provider; judge batches or not)."""
        found = [s["bodies"] for s in self.submissions if provider in (None, s["provider"])]
        return [b for b in found if judge is None or judge == ("impartial judge" in json.dumps(b))]

    # ---- batches ----
    def create(self, provider: str, items: list[tuple[str, dict]]) -> dict:
        with self._lock:
            batch_id = f"batch_{next(self._ids):04d}"
            outcome = self.outcomes.popleft() if self.outcomes else ("completed", len(items))
            self.batches[batch_id] = {"id": batch_id, "provider": provider, "items": items, "outcome": outcome,
                                      "ended": False, "lines": {}, "counts": Counter()}
            self.submissions.append({"provider": provider, "id": batch_id, "bodies": [b for _, b in items]})
        return self.batches[batch_id]

    def look(self, batch_id: str) -> dict | None:
        """A batch as a poll sees it: it ends on the second look unless held."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return None
        with self._lock:
            self.polled[batch_id] += 1
            if not batch["ended"] and not self.hold and self.polled[batch_id] >= 2:
                self._finish(batch)
        return batch

    def _finish(self, batch: dict) -> None:
        status, answered = batch["outcome"]
        items = batch["items"]
        write = _openai_line if batch["provider"] == "openai" else _anthropic_line
        lines: dict[str, list[bytes]] = {"output": [], "error": []}
        seen: Counter[str] = Counter()  # a body asked again (Anthropic sends no seed) gets another sample
        for index, (custom_id, body) in enumerate(items):
            seen[json.dumps(body, sort_keys=True)] += 1
            again = seen[json.dumps(body, sort_keys=True)] - 1
            failed = self.fail_if is not None and self.fail_if(body)
            if index < answered and status != "failed":
                kind = "errored" if failed else "succeeded"
            elif batch["provider"] == "anthropic":
                kind = "canceled" if status == "cancelled" else "expired"
            else:
                continue  # OpenAI leaves the items an ended batch never ran out of its files
            batch["counts"][kind] += 1
            file, line = write(custom_id, body, kind, again)
            lines[file].append(line)
        batch["lines"] = {k: list(reversed(v)) for k, v in lines.items()}
        if self.junk:
            batch["lines"]["output"] = _salted(batch["lines"]["output"])
        batch["status"], batch["ended"] = status, True
        for file in ("output", "error"):
            if batch["lines"][file]:
                file_id = f"file-{batch['id']}-{file}"
                self.files[file_id] = b"\n".join(batch["lines"][file]) + b"\n"
                batch[f"{file}_file_id"] = file_id

    def openai_view(self, batch: dict) -> dict:
        counts = batch["counts"]
        status = batch["status"] if batch["ended"] else "in_progress"
        errors = {"object": "list", "data": [{"code": "invalid_request", "message": "planted validation failure",
                                              "line": 1, "param": None}]} if status == "failed" else None
        return {"id": batch["id"], "object": "batch", "endpoint": "/v1/chat/completions", "errors": errors,
                "input_file_id": "file-input", "completion_window": "24h", "status": status,
                "output_file_id": batch.get("output_file_id"), "error_file_id": batch.get("error_file_id"),
                "created_at": 0, "request_counts": {"total": len(batch["items"]), "completed": counts["succeeded"],
                                                    "failed": counts["errored"]}}

    def anthropic_view(self, batch: dict) -> dict:
        counts = batch["counts"]
        ended = batch["ended"]
        return {"id": batch["id"], "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else len(batch["items"]),
                                   "succeeded": counts["succeeded"], "errored": counts["errored"],
                                   "canceled": counts["canceled"], "expired": counts["expired"]},
                "created_at": "2025-01-01T00:00:00Z", "expires_at": "2025-01-02T00:00:00Z",
                "ended_at": "2025-01-01T01:00:00Z" if ended else None, "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": f"{self.url}/v1/messages/batches/{batch['id']}/results" if ended else None}


def _text(body: dict, again: int) -> str:
    return answer_text(body) + (f" (sample {again})" if again and "impartial judge" not in json.dumps(body) else "")


def _openai_line(custom_id: str, body: dict, kind: str, again: int) -> tuple[str, bytes]:
    if kind == "errored":
        response = {"status_code": 400, "request_id": "req", "body": {"error": {
            "message": "planted item failure", "type": "invalid_request_error"}}}
        return "error", json.dumps({"id": "bri", "custom_id": custom_id, "response": response, "error": None}).encode()
    response = {"status_code": 200, "request_id": "req", "body": _openai(body, _text(body, again))}
    return "output", json.dumps({"id": "bri", "custom_id": custom_id, "response": response, "error": None}).encode()


def _anthropic_line(custom_id: str, body: dict, kind: str, again: int) -> tuple[str, bytes]:
    if kind == "succeeded":
        result = {"type": "succeeded", "message": _anthropic(body, _text(body, again))}
    elif kind == "errored":
        result = {"type": "errored", "error": {"type": "error", "error": {"type": "invalid_request_error",
                                                                          "message": "planted item failure"}}}
    else:
        result = {"type": kind}
    return "output", json.dumps({"custom_id": custom_id, "result": result}).encode()


def _salted(lines: list[bytes]) -> list[bytes]:
    """Junk lines, a repeat of the first answer with other text (the first must stand), the last answer left out,
    and one answer whose body is no chat completion at all."""
    first, broken = json.loads(lines[0]), json.loads(lines[1])
    repeat = json.dumps(first).replace("Answer ", "REPEATED ").encode()
    for key in ("response", "result"):
        if key in broken:
            broken[key] = {"status_code": 200, "body": {"choices": "nope"}} if key == "response" else \
                {"type": "succeeded", "message": {"content": "nope"}}
    return [*JUNK[:3], lines[0], repeat, json.dumps(broken).encode(), *JUNK[3:], *lines[2:-1]]


def _handler(fake: FakeBatch):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: dict | bytes, kind: str = "application/json") -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _missing(self) -> None:
            self._send(404, {"error": {"type": "not_found_error", "message": f"no such thing: {self.path}"}})

        def do_GET(self) -> None:
            if m := re.fullmatch(r"/v1/files/([\w-]+)/content", self.path):
                data = fake.files.get(m.group(1))
                if data is None:
                    return self._missing()
                fake.downloads[m.group(1).split("-")[1]] += 1
                return self._send(200, data, "application/octet-stream")
            if m := re.fullmatch(r"/v1/(messages/)?batches/(\w+)(/results)?", self.path):
                if fake.poll_faults and not m.group(3):
                    fake.poll_faults -= 1
                    return self._send(503, {"error": {"type": "overloaded_error", "message": "planted outage"}})
                batch = fake.look(m.group(2)) if not m.group(3) else fake.batches.get(m.group(2))
                if batch is None:
                    return self._missing()
                if m.group(3):
                    fake.downloads[batch["id"]] += 1
                    return self._send(200, b"\n".join(batch["lines"]["output"]) + b"\n", "application/binary")
                return self._send(200, fake.anthropic_view(batch) if m.group(1) else fake.openai_view(batch))
            self._missing()

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/v1/files":
                return self._upload(data)
            body = json.loads(data or b"{}")
            if self.path == "/v1/batches":
                lines = fake.files[body["input_file_id"]].decode().splitlines()
                items = [(item["custom_id"], item["body"]) for item in map(json.loads, lines)]
                return self._send(200, fake.openai_view(fake.create("openai", items)))
            if self.path == "/v1/messages/batches":
                items = [(item["custom_id"], item["params"]) for item in body["requests"]]
                return self._send(200, fake.anthropic_view(fake.create("anthropic", items)))
            if self.path in ("/v1/chat/completions", "/v1/messages"):  # online, for comparison
                fake.online.append(body)
                reply = _openai if self.path.endswith("completions") else _anthropic
                return self._send(200, reply(body, answer_text(body)))
            self._missing()

        def _upload(self, data: bytes) -> None:
            head = f"Content-Type: {self.headers['content-type']}\r\n\r\n".encode()
            form = email.parser.BytesParser().parsebytes(head + data)
            parts = {p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                     for p in form.get_payload()}
            assert parts["purpose"] == b"batch", parts["purpose"]
            file_id = f"file-upload{next(fake._uploads)}"
            fake.files[file_id] = parts["file"]
            self._send(200, {"id": file_id, "object": "file", "bytes": len(parts["file"]), "filename": "batch.jsonl",
                             "created_at": int(time.time()), "purpose": "batch", "status": "processed"})

    return Handler


if __name__ == "__main__":  # python tests/fake_batch.py: serve until killed, print the URL
    with FakeBatch() as served:
        print(served.url, flush=True)
        threading.Event().wait()
