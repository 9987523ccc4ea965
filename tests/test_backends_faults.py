"""Faults from a controllable local server: retried when transient, on the row's record when not, never the batch's.

The server (tests/fake_llm.py) is a real HTTP server on 127.0.0.1, spoken to by the official openai SDK.
"""

import asyncio

import time

import pytest
from tenacity import RetryCallState

from fake_llm import FakeLLM, digest
from prefdata.backends import ChatRequest, RequestCache, SamplingParams, run_requests
from prefdata.backends.openai_backend import OpenAIBackend, read_reply
from prefdata.backends.ratelimit import RateLimits
from prefdata.backends.retry import Failure, _wait, classify, retry_after_s


def ask(*texts, max_tokens=40):
    return [ChatRequest.of([{"role": "user", "content": t}], params=SamplingParams(max_tokens=max_tokens))
            for t in texts]


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


def backend(server, **kw):
    options = dict(base_url=server.url + "/v1", concurrency=1, retry_initial_s=0.01, retry_max_s=5, timeout_s=0.5,
                   max_attempts=4)
    return OpenAIBackend("fake-model", **{**options, **kw})


@pytest.mark.parametrize("fault", ["500", "timeout", "truncate", "badjson"])
def test_transient_fault_is_retried_and_the_answer_arrives(server, fault):
    server.faults.extend([fault, fault])
    [answer] = backend(server).generate(ask("hello"))
    assert answer.error is None and answer.text.startswith("Answer ") and answer.finish_reason == "stop"
    assert len(server.received) == 3  # two planted faults, then the answer
    assert answer.tokens_in > 0 and answer.tokens_out > 0


def test_429_waits_as_long_as_retry_after_says(server):
    server.faults.append("429")
    [answer] = backend(server, retry_initial_s=0.001).generate(ask("hello"))
    assert answer.error is None
    first, second = (r["time"] for r in server.received)
    # Backoff alone would wait ~1 ms; the server said Retry-After: 1.
    assert second - first >= 0.9


def test_retry_after_forms_and_the_cap():
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250"}) == 0.25
    assert 55 < retry_after_s({"retry-after": __import__("email.utils").utils.formatdate(
        __import__("time").time() + 60, usegmt=True)}) <= 60
    assert retry_after_s({}) is None
    state = RetryCallState(None, None, (), {})
    state.set_exception((Failure, Failure("rate_limited", "x", retry_after=500.0), None))
    assert _wait(0.5, 30.0)(state) == 30.0  # capped at retry_max_s


def test_a_request_that_keeps_failing_fails_its_row_only(server, tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    requests = ask("one", "two ALWAYS500", "three")
    answers = run_requests(backend(server, concurrency=3), requests, cache)
    assert [a.error is None for a in answers] == [True, False, True]
    assert answers[1].reason == "server_error" and "after 4 attempts" in answers[1].error
    assert answers[1].text is None
    cache.close()
    again = RequestCache(tmp_path / "c.sqlite")
    before = len(server.received)
    run_requests(backend(server), requests, again)
    resent = [r["body"]["messages"][-1]["content"] for r in server.received[before:]]
    assert set(resent) == {"two ALWAYS500"}  # failures are not cached: only the failed row is asked again
    assert again.hits == 2


def test_client_errors_are_not_retried(server):
    server.faults.append("400")
    [answer] = backend(server).generate(ask("hello"))
    assert answer.reason == "client_error" and len(server.received) == 1


def test_api_key_comes_from_the_named_env_var_and_never_reaches_an_error(monkeypatch):
    secret = "sk-test-" + "q" * 24
    with FakeLLM(api_key=secret) as fake:
        monkeypatch.setenv("MY_LLM_KEY", secret)
        [ok] = backend(fake, api_key_env="MY_LLM_KEY").generate(ask("hello"))
        assert ok.error is None
        assert fake.received[-1]["headers"]["authorization"] == f"Bearer {secret}"
        monkeypatch.setenv("MY_LLM_KEY", secret[:-1] + "x")  # a wrong key: the server echoes it back
        [refused] = backend(fake, api_key_env="MY_LLM_KEY").generate(ask("hello"))
        assert refused.reason == "client_error" and "401" in refused.error
        assert secret[:-1] not in refused.error and "qqqqqq" not in refused.error


def test_missing_key_for_the_real_api_is_a_clear_error(monkeypatch):
    from prefdata.errors import PrefdataError

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(PrefdataError, match="OPENAI_API_KEY"):
        OpenAIBackend("gpt-4o-mini").api_key()
    # through the whole path too: the run stops with the message, rather than failing every row with it
    with pytest.raises(PrefdataError, match="OPENAI_API_KEY"):
        run_requests(OpenAIBackend("gpt-4o-mini", max_attempts=1), ask("hello"), None)


def test_a_limit_below_one_request_a_minute_spaces_requests():
    limits = RateLimits(rpm=0.5, period_s=1.0)  # one request every 2 "minutes" of 1 s
    request = ask("hi")[0]

    async def two():
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(2):
            await limits.acquire(request)
        return loop.time() - start

    assert asyncio.run(two()) >= 1.5


def test_concurrency_is_bounded_and_each_answer_is_committed(tmp_path):
    with FakeLLM(delay_s=0.2) as fake:
        cache = RequestCache(tmp_path / "c.sqlite")
        requests = ask(*[f"q{i}" for i in range(9)])
        seen = []
        answers = run_requests(backend(fake, concurrency=3), requests, cache,
                               on_progress=lambda n: seen.append(len(cache.get_many([r.key("openai", "fake-model")
                                                                                      for r in requests]))))
        assert all(a.error is None for a in answers)
        assert 1 < fake.max_inflight <= 3
        # When the progress bar moves by one, that answer is already on disk (answers arriving together
        # are committed together, so the cache may be ahead of the bar, never behind it).
        assert len(seen) == 9 and all(on_disk >= shown for shown, on_disk in enumerate(seen, start=1))


def test_identical_requests_are_sent_once(server):
    answers = run_requests(backend(server, concurrency=4), ask("same", "same", "other", "same"), None)
    assert len(server.received) == 2 and answers[0] == answers[1] == answers[3]


def test_requests_per_minute_limit_spaces_requests(server):
    b = backend(server, concurrency=6)
    b.limits = RateLimits(rpm=2, period_s=1.0)  # a bucket of 2 that leaks 2 a second: the 6th waits 2 s
    start = time.monotonic()
    answers = b.generate(ask(*[f"r{i}" for i in range(6)]))
    assert all(a.error is None for a in answers)
    # a lower bound, measured where the limit acts (the client): a slow machine can only make it longer, whereas
    # the server's arrival times shrink when the first requests are slow to leave (seen on a loaded machine)
    assert time.monotonic() - start >= 1.9 and len(server.received) == 6


def test_tokens_per_minute_limit_counts_estimated_tokens():
    limits = RateLimits(tpm=1000, period_s=1.0)
    request = ask("x" * 400, max_tokens=400)[0]  # ~500 tokens estimated: two fit in the bucket, the third waits

    async def three():
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(3):
            await limits.acquire(request)
        return loop.time() - start

    assert asyncio.run(three()) >= 0.4


def test_classify_sorts_transport_errors():
    assert classify(ConnectionResetError("reset")).category == "connection"
    assert classify(ValueError("Expecting value")).category == "bad_response"
    assert not classify(KeyError("x")).transient


@pytest.mark.parametrize("reply", [{}, [], {"choices": []}, {"choices": [{"message": {"content": None}}]},
                                   {"choices": [{"message": {"content": 3}}]}, {"error": "x"}])
def test_a_reply_that_is_json_but_no_completion_is_a_bad_response(reply):
    with pytest.raises(Failure) as caught:
        read_reply(reply)
    assert caught.value.category == "bad_response" and caught.value.transient


def test_a_completion_is_read_with_its_usage_and_finish_reason():
    reply = {"choices": [{"message": {"content": "[[A]] fine"}, "finish_reason": "length"}],
             "usage": {"prompt_tokens": 12, "completion_tokens": 3}}
    answer = read_reply(reply, prefill="[[")
    assert (answer.text, answer.finish_reason, answer.tokens_in, answer.tokens_out) == ("A]] fine", "length", 12, 3)


def test_request_digest_is_stable():
    assert digest({"a": 1, "b": [1, 2]}) == digest({"b": [1, 2], "a": 1})
