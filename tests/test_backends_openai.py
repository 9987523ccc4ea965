"""The OpenAI path: the official SDK against a real OpenAI-compatible server on loopback
(`transformers serve` with the embedded model), and request bodies checked on the local test server."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from fake_llm import FakeLLM
from prefdata.backends import ChatRequest, RequestCache, SamplingParams, run_requests
from prefdata.backends.openai_backend import OpenAIBackend

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
          "required": ["name", "score"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_model(embedded_model):
    """`transformers serve` on 127.0.0.1, serving the embedded model folder; stopped after the module."""
    pytest.importorskip("fastapi", reason="transformers serve needs the transformers[serving] extra")
    cli = shutil.which("transformers", path=str(Path(sys.executable).parent))
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"transformers-serve-{port}.log", "w")
    server = subprocess.Popen([cli, "serve", str(embedded_model), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"transformers serve exited: {Path(log.name).read_text()[-2000:]}")
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", str(embedded_model)
    finally:
        server.terminate()
        server.wait(30)
        log.close()


@pytest.mark.slow
def test_real_server_answers_through_the_backend_and_the_cache(served_model, tmp_path):
    url, model = served_model
    backend = OpenAIBackend(model, base_url=url, concurrency=2, timeout_s=120)
    params = SamplingParams(temperature=0.0, max_tokens=12)
    requests = [ChatRequest.of([{"role": "user", "content": q}], params=params)
                for q in ("What is the capital of France?", "Name a colour.", "Say hello.")]
    cache = RequestCache(tmp_path / "c.sqlite")
    answers = run_requests(backend, requests, cache)
    assert all(a.error is None for a in answers), [a.error for a in answers]
    assert all(a.text.strip() for a in answers)
    assert all(a.finish_reason in ("stop", "length") and 0 < a.tokens_out <= 12 and a.tokens_in > 5
               for a in answers)
    again = run_requests(backend, requests, cache)  # all from the cache: the same answers
    assert cache.hits == 3 and [a.text for a in again] == [a.text for a in answers]


@pytest.mark.slow
def test_real_server_structured_output_is_checked(served_model):
    """This server ignores response_format; the answer is still checked, and retried with the schema in the
    prompt: it comes back as valid JSON or as an invalid_json error, never as unchecked text."""
    url, model = served_model
    backend = OpenAIBackend(model, base_url=url, timeout_s=120, schema_retries=1)
    request = ChatRequest.of([{"role": "user", "content": "Give a name and a score."}], json_schema=SCHEMA,
                             params=SamplingParams(temperature=0.0, max_tokens=40))
    [answer] = backend.generate([request])
    if answer.error is None:
        value = json.loads(answer.text)
        assert isinstance(value["name"], str) and isinstance(value["score"], int)
    else:
        assert answer.reason == "invalid_json"
        assert answer.tokens_out > 40  # both attempts were paid for and counted


def test_body_carries_response_format_seed_and_sample():
    with FakeLLM() as fake:
        backend = OpenAIBackend("m", base_url=fake.url + "/v1")
        requests = [ChatRequest.of([{"role": "user", "content": "q"}], params=SamplingParams(seed=5), sample=s,
                                   json_schema=SCHEMA if s == 0 else None) for s in (0, 1)]
        backend.generate(requests)
        by_seed = {b["seed"]: b for b in fake.bodies()}
        first, second = by_seed[5], by_seed[6]
        assert first["response_format"]["json_schema"]["schema"] == SCHEMA and first["seed"] == 5
        assert "response_format" not in second and second["seed"] == 6  # each sample its own seed


def test_server_that_ignores_the_schema_gets_it_in_the_prompt():
    """The test server answers prose unless the schema is in the prompt, like a server without
    structured decoding: the first answer fails the check, the retry carries the schema and passes."""
    with FakeLLM() as fake:
        backend = OpenAIBackend("m", base_url=fake.url + "/v1")
        [answer] = backend.generate([ChatRequest.of([{"role": "user", "content": "q"}], json_schema=SCHEMA)])
        assert json.loads(answer.text) == {"name": "planted", "score": 3} and answer.error is None
        first, second = fake.bodies()
        assert "JSON Schema" not in json.dumps(first["messages"])
        assert second["messages"][0]["role"] == "system" and '"score"' in second["messages"][0]["content"]
        assert second["seed"] != first["seed"]
        assert answer.tokens_in > 0


def test_prefill_repeated_by_the_server_is_not_doubled():
    with FakeLLM() as fake:
        backend = OpenAIBackend("m", base_url=fake.url + "/v1")
        judge = ChatRequest.of([{"role": "system", "content": "You are an impartial judge."},
                                {"role": "user", "content": "A or B?"}], prefill='{"winner": "')
        [answer] = backend.generate([judge])
        assert fake.bodies()[0]["messages"][-1] == {"role": "assistant", "content": '{"winner": "'}
        verdict = json.loads(judge.prefill + answer.text)
        assert verdict["winner"] in ("A", "B")
