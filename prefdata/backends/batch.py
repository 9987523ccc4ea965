"""The providers' Batch APIs (OpenAI Batch, Anthropic Message Batches) as backends: half price, up to a day.

A batch backend has no `acomplete`, so `run_requests` hands it whole batches (`batch_size` requests) through
`generate`, which submits one provider batch, polls it until it ends, downloads its results and returns one
answer per request, matched by custom_id (never by position). Request bodies and reply reading are the online
backends' own, and so are the cache keys (the backend is named "openai" / "anthropic"): an answer a batch got
serves an online run, and the other way round.

Resume: a batch's id is written to `batches.json` in the run folder (keyed by a digest of the batch's request
cache keys) as soon as it is submitted, so a killed build run again polls that batch instead of paying for a new
one. Once its answers are in the request cache (`committed`), the entry is marked done: a re-run then sends just
the requests that failed, in a new batch.

Faults fail rows, never the run: a failed, expired or cancelled batch, an errored item, a result line that is not
JSON or names a custom_id not asked for, a missing result, a batch that has not ended after `batch_timeout_s`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Sequence

from prefdata import strict_json
from prefdata.backends import anthropic_backend, openai_backend
from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.backends.http import HTTPBackend, run_sync
from prefdata.backends.retry import Failure, with_retries
from prefdata.backends.structured import check_batch
from prefdata.redact import url_secrets

MAX_LINE = 64 << 20  # bytes of one result line; a longer one is skipped (its request fails)
MAX_LEDGER = 64 << 20  # bytes of batches.json read back
BATCH_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")  # ids as providers write them; anything else in the file is ignored
ENDPOINT = "/v1/chat/completions"


def _failed(category: str, message: str) -> ChatResponse:
    return ChatResponse(None, error=f"{category}: {message}")


def _get(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...`, or None where a level is missing or not a mapping (result lines are hostile)."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


class Ledger:
    """`batches.json`: the batches this run folder submitted, by digest of their requests. Written whole to a
    temporary file and renamed, so a kill leaves the old file or the new one, never half of one."""

    def __init__(self, folder: Path):
        self.path = folder / "batches.json"

    def read(self) -> dict:
        try:
            if self.path.stat().st_size > MAX_LEDGER:
                return {}
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # none yet, or unreadable: batches are submitted anew
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, digest: str) -> dict | None:
        entry = self.read().get(digest)
        ok = isinstance(entry, dict) and isinstance(entry.get("id"), str) and BATCH_ID.match(entry["id"])
        return entry if ok else None

    def put(self, changes: dict[str, dict]) -> None:
        data = self.read()
        for digest, fields in changes.items():
            data[digest] = {**(data.get(digest) if isinstance(data.get(digest), dict) else {}), **fields}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


async def _lines(response: Any, most: int) -> AsyncIterator[bytes]:
    """The lines of a streamed JSONL body: at most `most` of them, and no line longer than MAX_LINE (bounded
    memory and time whatever the server sends)."""
    line, skipping, count = bytearray(), False, 0
    async for chunk in response.iter_bytes():
        parts = chunk.split(b"\n")
        for index, part in enumerate(parts):
            if not skipping:
                line += part
                if len(line) > MAX_LINE:
                    line, skipping = bytearray(), True
            if index < len(parts) - 1:  # a newline ends this line
                if not skipping and line.strip():
                    yield bytes(line)
                    count += 1
                    if count >= most:
                        return
                line, skipping = bytearray(), False
    if not skipping and line.strip():
        yield bytes(line)


def _record(line: bytes) -> dict | None:
    """One result line as a mapping with a custom_id, or None (not JSON, not an object, no custom_id)."""
    try:
        value = strict_json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) and isinstance(value.get("custom_id"), str) else None


class BatchBackend:
    """One provider batch per `generate` call; subclasses speak each provider's API."""

    online_class: type[HTTPBackend]
    price_factor = 0.5  # both providers charge half the listed price for batched requests
    meter = None  # set by the run context, as on every backend
    run_folder: Path | None = None  # set by the run context: where batches.json lives
    quiet = False

    def __init__(self, online: HTTPBackend, *, batch_size: int = 10_000, poll_s: float = 30.0,
                 timeout_s: float = 86400 + 3600):
        self.online = online  # its body(), API key, client and retry settings
        self.name, self.model = online.name, online.model
        self.batch_size, self.poll_s, self.timeout_s = batch_size, poll_s, timeout_s
        self._returned: list[str] = []  # digests of batches whose answers run_requests has yet to cache

    @classmethod
    def from_spec(cls, spec: Any) -> "BatchBackend":
        return cls(cls.online_class.from_spec(spec), batch_size=spec.batch_size, poll_s=spec.poll_s,
                   timeout_s=spec.batch_timeout_s)

    # ---- the Backend protocol ----
    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        """Answer the requests through one provider batch (and one more per structured-output re-ask)."""
        if not requests:
            return []
        return check_batch(self._one_batch, requests, self._one_batch(requests), self.online.schema_retries)

    def committed(self) -> None:
        """run_requests calls this once the answers `generate` returned are cached: their batches are done, and a
        re-run asking for the same requests (those that failed) submits a new batch instead of polling these."""
        if self._returned:
            Ledger(self._folder()).put({digest: {"done": True} for digest in self._returned})
            self._returned.clear()

    # ---- one batch ----
    def _one_batch(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        async def guarded() -> list[ChatResponse]:
            try:
                return await self._batch(list(requests))
            finally:
                await self.online.aclose()

        return run_sync(guarded())

    async def _batch(self, requests: list[ChatRequest]) -> list[ChatResponse]:
        ledger, digest = Ledger(self._folder()), self._digest(requests)
        entry = ledger.get(digest)
        if entry is None or entry.get("done"):
            try:
                batch_id = await self._call(self._submit, requests)
            except Failure as failure:
                return [_failed(failure.category, failure.message) for _ in requests]
            ledger.put({digest: {"id": batch_id, "requests": len(requests), "submitted": time.time(), "done": False}})
            self._say(f"{self.name} batch {batch_id}: submitted {len(requests)} requests")
        else:
            batch_id = entry["id"]
            self._say(f"{self.name} batch {batch_id}: resumed (submitted by an earlier run)")
        try:
            batch = await self._wait(batch_id)
            answers = await self._call(self._results, batch, requests)
        except Failure as failure:
            if failure.message.startswith("HTTP 404"):  # the provider does not know it: a re-run submits anew
                ledger.put({digest: {"done": True}})
            return [_failed(failure.category, f"batch {batch_id}: {failure.message}") for _ in requests]
        self._returned.append(digest)
        return answers

    async def _wait(self, batch_id: str) -> Any:
        """Poll until the batch has ended; raises Failure("batch_timeout") after `timeout_s`."""
        deadline, shown = time.monotonic() + self.timeout_s, None
        while True:
            try:
                batch = await self._call(self._retrieve, batch_id)
            except Failure as failure:
                if not failure.transient:
                    raise
                self._say(f"{self.name} batch {batch_id}: cannot look at it now ({failure}); trying again")
                ended, state = False, shown  # a provider outage of a few minutes must not fail a day's batch
            else:
                ended, state = self._state(batch)
            if state != shown:
                self._say(f"{self.name} batch {batch_id}: {state}")
                shown = state
            if ended:
                return batch
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("batch_timeout", f"not ended after {self.timeout_s:g} s ({state}); run the build "
                                               "again to keep waiting for it")
            await asyncio.sleep(min(self.poll_s, left))

    # ---- plumbing ----
    async def _call(self, step: Callable, *args: Any) -> Any:
        """One API step with the client of this event loop, retried like every HTTP request (retry.py)."""
        online = self.online
        secrets = (os.environ.get(online.key_env), *url_secrets(online.base_url))
        return await with_retries(lambda: step(online._client(), *args), **online.retry, secrets=secrets)

    def _digest(self, requests: list[ChatRequest]) -> str:
        keys = [r.key(self.name, self.model) for r in requests]
        return hashlib.sha256(json.dumps([self.online.base_url or "", keys]).encode()).hexdigest()

    def _folder(self) -> Path:
        if self.run_folder is not None:
            return Path(self.run_folder)
        from prefdata.backends.cache import default_path

        return default_path().parent  # outside a build: beside the shared request cache

    def _say(self, line: str) -> None:
        if not self.quiet:
            print(line, file=sys.stderr, flush=True)

    # ---- per provider ----
    async def _submit(self, client: Any, requests: list[ChatRequest]) -> str:
        raise NotImplementedError

    async def _retrieve(self, client: Any, batch_id: str) -> Any:
        raise NotImplementedError

    def _state(self, batch: Any) -> tuple[bool, str]:
        """(has it ended, its status and counts in words)"""
        raise NotImplementedError

    async def _results(self, client: Any, batch: Any, requests: list[ChatRequest]) -> list[ChatResponse]:
        raise NotImplementedError


Reader = Callable[[dict, ChatRequest], ChatResponse]


async def _match(response: Any, requests: list[ChatRequest], read: Reader, found: dict[int, ChatResponse]) -> None:
    """Read a streamed results file into `found` (request index -> answer), matching lines by custom_id: a line
    naming no request asked for is skipped, and a repeated custom_id keeps its first answer. Lines are parsed as
    they come, so memory holds one line and the answers, and at most 2n + 1000 lines are read."""
    async for line in _lines(response, 2 * len(requests) + 1000):
        record = _record(line)
        index = _index(record["custom_id"], len(requests)) if record else None
        if index is None or index in found:
            continue
        try:
            found[index] = read(record, requests[index])
        except Failure as failure:
            found[index] = _failed(failure.category, failure.message)
        except Exception as exc:  # noqa: BLE001 - any shape a hostile line has fails its row, not the run
            found[index] = _failed("bad_response", f"unreadable result ({type(exc).__name__})")


def _in_order(found: dict[int, ChatResponse], count: int, missing: str) -> list[ChatResponse]:
    """One answer per request; a request without a result gets the error `missing`."""
    return [found[i] if i in found else ChatResponse(None, error=missing) for i in range(count)]


def _custom_id(index: int) -> str:
    return f"r{index}"


def _index(custom_id: str, count: int) -> int | None:
    """The request a custom_id names, or None when it names none asked for."""
    if re.fullmatch(r"r(0|[1-9][0-9]{0,8})", custom_id) and int(custom_id[1:]) < count:
        return int(custom_id[1:])
    return None


class OpenAIBatchBackend(BatchBackend):
    """OpenAI's Batch API: a JSONL file of chat completion requests, an output file and an error file."""

    online_class = openai_backend.OpenAIBackend
    gives_logprobs = online_class.gives_logprobs  # judges then ask as they ask online: the same cache keys

    async def _submit(self, client: Any, requests: list[ChatRequest]) -> str:
        lines = [json.dumps({"custom_id": _custom_id(i), "method": "POST", "url": ENDPOINT,
                             "body": self.online.body(r, native=True)}) for i, r in enumerate(requests)]
        upload = await client.files.create(file=("prefdata-batch.jsonl", "\n".join(lines).encode(),
                                                 "application/jsonl"), purpose="batch")
        batch = await client.batches.create(input_file_id=upload.id, endpoint=ENDPOINT, completion_window="24h")
        return batch.id

    async def _retrieve(self, client: Any, batch_id: str) -> Any:
        return await client.batches.retrieve(batch_id)

    def _state(self, batch: Any) -> tuple[bool, str]:
        status, counts = getattr(batch, "status", None), getattr(batch, "request_counts", None)
        done, failed, total = (getattr(counts, name, 0) for name in ("completed", "failed", "total"))
        ended = status in ("completed", "failed", "expired", "cancelled")
        return ended, f"{status}, {done}/{total} done, {failed} failed"

    async def _results(self, client: Any, batch: Any, requests: list[ChatRequest]) -> list[ChatResponse]:
        found: dict[int, ChatResponse] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                async with client.files.with_streaming_response.content(file_id) as response:
                    await _match(response, requests, _openai_item, found)
        return _in_order(found, len(requests), _openai_missing(batch))


def _openai_item(record: dict, request: ChatRequest) -> ChatResponse:
    """One line of an output or error file."""
    error = record.get("error")
    if error:
        code = _get(error, "code")
        category = code if code in ("batch_expired", "batch_cancelled") else "batch_errored"
        return _failed(category, str(_get(error, "message") or code or error)[:300])
    status, body = _get(record, "response", "status_code"), _get(record, "response", "body")
    if status != 200:
        return _failed("batch_errored", f"HTTP {status} {str(_get(body, 'error', 'message') or '')[:300]}".strip())
    return openai_backend.read_reply(body, request.prefill)


def _openai_missing(batch: Any) -> str:
    """What a request without a result line gets, by how its batch ended."""
    status = getattr(batch, "status", None)
    if status == "failed":
        errors = getattr(getattr(batch, "errors", None), "data", None) or []
        said = "; ".join(str(getattr(e, "message", e))[:200] for e in errors[:3]) or "no reason given"
        return f"batch_failed: batch {batch.id} failed: {said}"
    if status in ("expired", "cancelled"):
        return f"batch_{status}: batch {batch.id} {status} before this request was answered"
    return f"bad_response: batch {batch.id} ({status}) gave no result for this request"


class AnthropicBatchBackend(BatchBackend):
    """Anthropic's Message Batches: requests as `{custom_id, params}`, results as one JSONL download."""

    online_class = anthropic_backend.AnthropicBackend

    async def _submit(self, client: Any, requests: list[ChatRequest]) -> str:
        batch = await client.messages.batches.create(requests=[
            {"custom_id": _custom_id(i), "params": self.online.body(r, native=True)} for i, r in enumerate(requests)])
        return batch.id

    async def _retrieve(self, client: Any, batch_id: str) -> Any:
        return await client.messages.batches.retrieve(batch_id)

    def _state(self, batch: Any) -> tuple[bool, str]:
        status, counts = getattr(batch, "processing_status", None), getattr(batch, "request_counts", None)
        said = ", ".join(f"{getattr(counts, name, 0)} {name}" for name in
                         ("processing", "succeeded", "errored", "canceled", "expired"))
        return status == "ended", f"{status}, {said}"

    async def _results(self, client: Any, batch: Any, requests: list[ChatRequest]) -> list[ChatResponse]:
        found: dict[int, ChatResponse] = {}
        async with client.messages.batches.with_streaming_response.results(batch.id) as response:
            await _match(response, requests, _anthropic_item, found)
        return _in_order(found, len(requests), f"bad_response: batch {batch.id} gave no result for this request")


def _anthropic_item(record: dict, request: ChatRequest) -> ChatResponse:
    """One line of a Message Batch's results."""
    from anthropic.types import Message

    kind = _get(record, "result", "type")
    if kind == "succeeded":
        message = _get(record, "result", "message")
        if not isinstance(_get(message, "content"), list):
            return _failed("bad_response", "no content in the answer")
        # built as the SDK builds a reply it receives (leniently: a stop reason newer than the SDK still reads)
        return anthropic_backend.read_reply(Message.construct(**message))
    if kind == "errored":
        error = _get(record, "result", "error", "error")
        return _failed("batch_errored", f"{_get(error, 'type')}: {str(_get(error, 'message'))[:300]}")
    if kind in ("canceled", "expired"):
        return _failed("batch_cancelled" if kind == "canceled" else "batch_expired",
                       f"the batch {kind} this request before it was answered")
    return _failed("bad_response", f"result of unknown type {str(kind)[:40]!r}")
