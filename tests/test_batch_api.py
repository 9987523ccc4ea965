"""Batch API backends (`backend: {kind: openai|anthropic, batch: true}`) against a local server that speaks OpenAI's
Files + Batches and Anthropic's Message Batches (tests/fake_batch.py), through the official SDKs: whole builds,
a build killed while its batch runs and started again, batches that expire, fail or are cancelled, the price, and
hostile result files."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest
import yaml

from conftest import ROOT, run_cli
from fake_batch import FakeBatch
from prefdata.backends import ChatRequest, RequestCache, run_requests
from prefdata.backends.anthropic_backend import AnthropicBackend
from prefdata.backends.batch import Ledger
from prefdata.backends.cost import Meter
from prefdata.backends.openai_backend import OpenAIBackend
from prefdata.build import build
from prefdata.errors import PrefdataError
from prefdata.spec import BackendSpec, load_spec

PROMPTS = ["What is the capital of France?", "Name a prime number above 10.", "Give one tip for sleeping well."]
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-3-5-haiku-latest"}  # both have list prices


@pytest.fixture
def fake():
    with FakeBatch() as served:
        yield served


def batch_backend(fake, kind: str = "openai", **spec) -> dict:
    url = fake.url + "/v1" if kind == "openai" else fake.url
    return {"kind": kind, "model": MODELS[kind], "base_url": url, "batch": True, "poll_s": 0.05,
            "retry_initial_s": 0.01, **spec}


def write_spec(work, fake, kind: str = "openai"):
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    backend = batch_backend(fake, kind)
    spec = {"name": "batched", "sources": [{"path": "prompts.jsonl"}],
            "generate": {"backend": backend, "n": 2, "max_tokens": 30}, "judge": {"backend": backend},
            "curate": [], "cache": "cache.sqlite", "output": {"dir": "out"}}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    return work / "spec.yaml"


def direct(fake, tmp_path, kind: str = "openai", **spec):
    """A batch backend made as a build makes it, keeping its batch ids in tmp_path."""
    from prefdata.backends import make_backend

    backend = make_backend(BackendSpec(**batch_backend(fake, kind, **spec)))
    backend.run_folder, backend.quiet = tmp_path, True
    return backend


def asks(*texts: str) -> list[ChatRequest]:
    return [ChatRequest.of([{"role": "user", "content": text}]) for text in texts]


def manifest(work) -> dict:
    return json.loads((work / "out" / "manifest.json").read_text())


# ---- whole builds ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_a_build_generates_and_judges_through_batches(tmp_path, fake, kind):
    done = run_cli("build", write_spec(tmp_path, fake, kind))
    assert done.returncode in (0, 1), done.stderr  # 1: validation may fault a three-prompt set
    assert (tmp_path / "out" / "data.parquet").is_file() and pl.read_parquet(tmp_path / "out" / "data.parquet").height
    assert [len(b) for b in fake.bodies(kind, judge=False)] == [6]  # 3 prompts x n=2, in one provider batch
    assert [len(b) for b in fake.bodies(kind, judge=True)] == [6]  # 3 comparisons x 2 orders
    assert not fake.online  # nothing went to the online endpoints
    info = manifest(tmp_path)
    assert info["counts"]["generate"]["kept"] == 6 and info["failed_requests"] == {}
    assert info["judging"]["judges"] and pl.read_parquet(tmp_path / "out" / "judgments.parquet")["parse_ok"].all()
    # progress names each batch, its status and its counts
    assert f"{kind} batch batch_0001: submitted 6 requests" in done.stderr
    assert ("completed, 6/6 done, 0 failed" if kind == "openai" else "ended, 0 processing, 6 succeeded") \
        in done.stderr
    ledger = json.loads((tmp_path / "out" / ".run" / "batches.json").read_text())
    assert sorted(e["id"] for e in ledger.values()) == ["batch_0001", "batch_0002"]
    assert all(e["done"] for e in ledger.values())


def test_a_killed_build_polls_its_batch_again_instead_of_paying_twice(tmp_path, fake):
    spec = write_spec(tmp_path, fake)
    fake.hold = True  # the generation batch stays in progress
    process = subprocess.Popen([sys.executable, "-m", "prefdata", "build", str(spec)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 60
        while not fake.polled and process.poll() is None and time.time() < deadline:  # polled: its id is on disk
            time.sleep(0.05)
        assert fake.polled and process.poll() is None, "the build never polled its batch"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert len(fake.submissions) == 1
    fake.release()

    again = run_cli("build", spec)
    assert again.returncode in (0, 1), again.stderr
    assert "openai batch batch_0001: resumed" in again.stderr
    assert len(fake.bodies(judge=False)) == 1  # the generation requests were submitted once, by the killed run
    assert len(fake.bodies(judge=True)) == 1
    assert manifest(tmp_path)["counts"]["generate"]["kept"] == 6
    assert (tmp_path / "out" / "data.parquet").is_file()


def _capital(body: dict) -> bool:
    text = json.dumps(body)
    return "capital of France" in text and "impartial judge" not in text


@pytest.mark.parametrize("fault, failed, reason", [
    (("expired", 4), 2, "batch_expired: batch batch_0001 expired before this request was answered"),
    (("cancelled", 3), 3, "batch_cancelled: batch batch_0001 cancelled before this request was answered"),
    (_capital, 2, "batch_errored: HTTP 400 planted item failure"),
], ids=["expired", "cancelled", "item_errors"])
def test_what_failed_in_a_batch_fails_its_rows_and_a_rerun_sends_only_those(tmp_path, fake, fault, failed, reason):
    if callable(fault):
        fake.fail_if = fault
    else:
        fake.outcomes.append(fault)
    spec = write_spec(tmp_path, fake)
    first = build(spec, quiet=True)
    assert first.failed_requests["generate"]["failed"] == failed
    assert first.manifest["counts"]["generate"]["kept"] == 6 - failed  # what succeeded is kept
    dropped = pl.read_parquet(tmp_path / "out" / ".run" / "generate.dropped.parquet")
    assert dropped.height == failed and set(dropped["reason"]) == {"generation_failed"}
    assert set(dropped["detail"]) == {reason}
    answered = [json.dumps(b) for b in fake.bodies(judge=False)[0]]
    looked = (fake.polled["batch_0001"], fake.downloads["batch_0001"])

    fake.fail_if = None
    again = build(spec, quiet=True)
    sent = fake.bodies(judge=False)
    assert len(sent) == 2 and len(sent[1]) == failed  # a new batch, of just the failed requests
    assert not {json.dumps(b) for b in sent[1]} - set(answered)
    assert again.failed_requests == {} and again.manifest["counts"]["generate"]["kept"] == 6
    assert (fake.polled["batch_0001"], fake.downloads["batch_0001"]) == looked  # the ended batch was left alone


# ---- one backend, directly ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_batch_answers_cost_half_and_serve_an_online_run(tmp_path, fake, kind):
    requests = asks(*(f"Question number {i} about the price of tea" for i in range(5)))
    online_class = OpenAIBackend if kind == "openai" else AnthropicBackend
    online = online_class(MODELS[kind], base_url=batch_backend(fake, kind)["base_url"])
    listed, batched = Meter(), Meter()
    online_answers = run_requests(online, requests, None, meter=listed)
    cache = RequestCache(tmp_path / "cache.sqlite")
    batch_answers = run_requests(direct(fake, tmp_path, kind), requests, cache, meter=batched)
    assert [a.text for a in batch_answers] == [a.text for a in online_answers]
    assert listed.spent > 0 and batched.spent == listed.spent / 2
    assert batched.usage[MODELS[kind]].tokens_in == listed.usage[MODELS[kind]].tokens_in

    sent = len(fake.online)
    again = run_requests(online, requests, cache, meter=Meter())  # the online kind finds the batch's answers
    assert [a.text for a in again] == [a.text for a in batch_answers] and len(fake.online) == sent
    assert cache.hits == 5


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_hostile_result_lines_fail_rows_never_the_batch(tmp_path, fake, kind):
    fake.junk = True  # junk lines, a repeated custom_id, a broken answer, one answer missing; lines reversed
    backend = direct(fake, tmp_path, kind)
    answers = backend.generate(asks("a", "b", "c", "d", "e"))
    # lines come reversed: the last request's answer first, then a repeat of it with other text (the first
    # stands), then the fourth's answer broken; the first request's answer is left out
    assert answers[4].text.startswith("Answer ") and answers[4].text.endswith("to: e")
    assert answers[3].reason == "bad_response"
    assert answers[0].reason == "bad_response" and "gave no result" in answers[0].error
    assert answers[1].text.endswith("to: b") and answers[2].text.endswith("to: c")


def test_a_batch_past_its_timeout_fails_its_rows_and_is_polled_again_next_time(tmp_path, fake):
    fake.hold = True
    backend = direct(fake, tmp_path, batch_timeout_s=0.3)
    started = time.monotonic()
    answers = run_requests(backend, asks("slow", "slower"), None)
    assert time.monotonic() - started < 10
    assert {a.reason for a in answers} == {"batch_timeout"} and "run the build again" in answers[0].error
    fake.release()
    answers = run_requests(backend, asks("slow", "slower"), None)
    assert all(a.error is None for a in answers) and len(fake.submissions) == 1  # the same batch, waited for


def test_a_provider_outage_while_polling_does_not_fail_the_batch(tmp_path, fake):
    fake.poll_faults = 3
    answers = run_requests(direct(fake, tmp_path, max_attempts=1), asks("x", "y"), None)
    assert all(a.error is None for a in answers) and len(fake.submissions) == 1 and not fake.poll_faults


def test_a_failed_batch_fails_every_row_and_the_next_run_submits_anew(tmp_path, fake):
    fake.outcomes.append(("failed", 0))
    backend = direct(fake, tmp_path)
    answers = run_requests(backend, asks("x", "y"), None)
    assert [a.error for a in answers] == ["batch_failed: batch batch_0001 failed: planted validation failure"] * 2
    answers = run_requests(backend, asks("x", "y"), None)
    assert all(a.error is None for a in answers) and len(fake.submissions) == 2
    assert fake.polled["batch_0001"] == 2


@pytest.mark.parametrize("fault, reason", [(("expired", 1), "batch_expired"), (("cancelled", 1), "batch_cancelled"),
                                           (lambda body: "y" in json.dumps(body["messages"]), "batch_errored")],
                         ids=["expired", "canceled", "errored"])
def test_anthropic_result_types_become_row_errors(tmp_path, fake, fault, reason):
    if callable(fault):
        fake.fail_if = fault
    else:
        fake.outcomes.append(fault)
    answers = direct(fake, tmp_path, "anthropic").generate(asks("x", "y"))
    assert answers[0].error is None and answers[1].reason == reason


def test_answers_lost_before_the_cache_kept_them_are_downloaded_again_not_paid_again(tmp_path, fake):
    first = direct(fake, tmp_path).generate(asks("x", "y"))  # as if killed before run_requests cached them
    again = direct(fake, tmp_path).generate(asks("x", "y"))
    assert [a.text for a in again] == [a.text for a in first] and len(fake.submissions) == 1
    assert fake.downloads["batch_0001"] == 2


def test_result_lines_are_read_within_bounds(monkeypatch):
    from prefdata.backends import batch

    class Streamed:
        def __init__(self, *chunks):
            self.chunks = chunks

        async def iter_bytes(self):
            for chunk in self.chunks:
                yield chunk

    async def lines(response, most):
        return [line async for line in batch._lines(response, most)]

    monkeypatch.setattr(batch, "MAX_LINE", 10)
    body = Streamed(b'{"a"', b': 1}\n' + b"x" * 8, b"y" * 8 + b"\nshort\n\n", b"last")
    assert asyncio.run(lines(body, 100)) == [b'{"a": 1}', b"short", b"last"]  # the 16-byte line is skipped
    assert asyncio.run(lines(Streamed(b"1\n2\n3\n4\n"), 2)) == [b"1", b"2"]


def test_the_ledger_survives_junk_and_keeps_ids_only(tmp_path):
    ledger = Ledger(tmp_path)
    (tmp_path / "batches.json").write_text("{not json")
    assert ledger.read() == {}
    ledger.put({"d1": {"id": "batch_1"}, "d2": {"id": "../../etc"}})
    assert ledger.get("d1")["id"] == "batch_1" and ledger.get("d2") is None
    assert not list(tmp_path.glob("*.tmp"))


# ---- the spec ---------------------------------------------------------------------------------------------

def test_batch_is_for_openai_and_anthropic_only(tmp_path):
    with pytest.raises(ValueError, match="only openai or anthropic have a Batch API, not 'vllm'"):
        BackendSpec(kind="vllm", model="m", batch=True)
    with pytest.raises(ValueError, match="poll_s: only a Batch API backend takes it"):
        BackendSpec(kind="openai", model="m", poll_s=1)
    with pytest.raises(ValueError, match="batch_size: at most 4096"):
        BackendSpec(kind="openai", model="m", batch_size=5000)
    assert BackendSpec(kind="openai", model="m", batch=True).batch_size == 10_000
    assert BackendSpec(kind="anthropic", model="m", batch=True, batch_size=50_000).batch_size == 50_000
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({
        "name": "x", "sources": [{"path": "p.jsonl"}], "generate": {"backend": {"kind": "transformers", "model": "m",
                                                                               "batch": True}}}))
    with pytest.raises(PrefdataError, match=r"spec.yaml:\d+: generate.backend: .*Batch API"):
        load_spec(tmp_path / "spec.yaml")
