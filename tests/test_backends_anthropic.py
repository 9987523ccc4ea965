"""The Anthropic path: the official SDK against a local server that speaks the Messages API."""

import json

import pytest

from fake_llm import FakeLLM
from prefdata.backends import ChatRequest, RequestCache, SamplingParams, run_requests
from prefdata.backends.anthropic_backend import AnthropicBackend
from prefdata.errors import PrefdataError

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "score": {"type": "integer"}},
          "required": ["name", "score"]}
SECRET = "sk-ant-" + "z" * 30


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", SECRET)
    with FakeLLM(api_key=SECRET) as fake:
        yield fake


def claude(server, **kw):
    return AnthropicBackend("claude-test", base_url=server.url, api_key_env="TEST_ANTHROPIC_KEY",
                            retry_initial_s=0.01, **kw)


def test_system_goes_apart_and_the_answer_is_read(server):
    request = ChatRequest.of([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
                             params=SamplingParams(max_tokens=33))
    [answer] = claude(server).generate([request])
    body = server.bodies("/v1/messages")[0]
    assert body["system"] == "Be brief." and body["messages"] == [{"role": "user", "content": "Hi"}]
    assert body["max_tokens"] == 33 and body["model"] == "claude-test"
    assert answer.error is None and answer.text.startswith("Answer ") and answer.finish_reason == "stop"
    assert answer.tokens_in > 0 and answer.tokens_out > 0


def test_prefill_is_the_last_assistant_turn_and_is_continued(server):
    request = ChatRequest.of([{"role": "user", "content": "Judge this"}], prefill='{"winner": "')
    [answer] = claude(server).generate([request])
    assert server.bodies()[0]["messages"][-1] == {"role": "assistant", "content": '{"winner": "'}
    assert answer.text == "continued after the prefill"


def test_structured_output_is_forced_tool_use(server):
    [answer] = claude(server).generate([ChatRequest.of([{"role": "user", "content": "Name?"}], json_schema=SCHEMA)])
    body = server.bodies()[0]
    assert body["tool_choice"] == {"type": "tool", "name": "answer"}
    assert body["tools"][0]["input_schema"] == SCHEMA
    assert json.loads(answer.text) == {"name": "planted", "score": 3} and answer.error is None


def test_overloaded_529_is_retried_and_rows_fail_alone(server, tmp_path):
    server.faults.extend(["529", "429"])
    requests = [ChatRequest.of([{"role": "user", "content": t}]) for t in ("a", "b ALWAYS500", "c")]
    answers = run_requests(claude(server, max_attempts=3, retry_max_s=0.05), requests,
                           RequestCache(tmp_path / "c.sqlite"))
    assert [a.error is None for a in answers] == [True, False, True]
    assert answers[1].reason == "server_error"


def test_the_key_travels_only_in_the_header(server, tmp_path):
    cache = RequestCache(tmp_path / "c.sqlite")
    run_requests(claude(server), [ChatRequest.of([{"role": "user", "content": "hi"}])], cache)
    headers = server.received[0]["headers"]
    assert SECRET in (headers.get("x-api-key", ""), headers.get("authorization", "").removeprefix("Bearer "))
    cache.close()
    assert SECRET.encode() not in (tmp_path / "c.sqlite").read_bytes()


def test_no_key_and_no_local_server_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(PrefdataError, match="ANTHROPIC_API_KEY"):
        AnthropicBackend("claude-sonnet-4-0").api_key()
