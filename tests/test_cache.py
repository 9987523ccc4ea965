"""The request cache: committed per batch, failures never cached, a re-run repeats nothing."""

from prefdata.backends import ChatRequest, ChatResponse, RequestCache, SamplingParams, run_requests


class Echo:
    """A deterministic local backend for exercising the cache; it fails on a marked request."""

    name, model, batch_size = "echo", "echo-1", 2

    def __init__(self):
        self.seen = []

    def generate(self, requests):
        self.seen.extend(requests)
        return [ChatResponse(None, error="boom") if r.messages[-1][1] == "fail" else
                ChatResponse("{oops", "stop", 3, 3, error="invalid_json: no JSON object") if r.messages[-1][1] == "json"
                else ChatResponse(r.messages[-1][1][::-1], "stop", 3, 3) for r in requests]


def requests(*texts):
    return [ChatRequest.of([{"role": "user", "content": t}], params=SamplingParams(max_tokens=8)) for t in texts]


def test_second_run_repeats_no_finished_request(tmp_path):
    cache, backend = RequestCache(tmp_path / "c.sqlite"), Echo()
    first = run_requests(backend, requests("abc", "fail", "xyz"), cache)
    assert [a.text for a in first] == ["cba", None, "zyx"] and first[1].error == "boom"
    cache.close()
    again, backend2 = RequestCache(tmp_path / "c.sqlite"), Echo()
    second = run_requests(backend2, requests("abc", "fail", "xyz"), again)
    assert [r.messages[-1][1] for r in backend2.seen] == ["fail"]  # only the failure is retried
    assert [a.text for a in second] == ["cba", None, "zyx"] and again.hits == 2


def test_an_answer_that_misses_its_schema_is_cached_with_its_error(tmp_path):
    """Paid for once: asking again would return the same unreadable text at the same price."""
    cache = RequestCache(tmp_path / "c.sqlite")
    [first] = run_requests(Echo(), requests("json"), cache)
    cache.close()
    again, backend = RequestCache(tmp_path / "c.sqlite"), Echo()
    [second] = run_requests(backend, requests("json"), again)
    assert backend.seen == [] and again.hits == 1
    assert (second.text, second.reason) == ("{oops", "invalid_json") and second.error == first.error


def test_key_depends_on_everything_that_changes_the_answer():
    base = ChatRequest.of([{"role": "user", "content": "hi"}])
    keys = {base.key("b", "m"), base.key("b", "m2"), base.key("b2", "m"),
            ChatRequest.of([{"role": "user", "content": "hi"}], sample=1).key("b", "m"),
            ChatRequest.of([{"role": "user", "content": "hi"}], prefill="{").key("b", "m"),
            ChatRequest.of([{"role": "user", "content": "hi"}], params=SamplingParams(temperature=0)).key("b", "m")}
    assert len(keys) == 6
    assert base.key("b", "m") == ChatRequest.of([{"role": "user", "content": "hi"}]).key("b", "m")
