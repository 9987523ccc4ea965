"""Grammar-constrained decoding and token log-probabilities on the local backend, with the embedded model."""

import json
import math
import sys

import pytest

from conftest import DPO_DEMO, json_rows
from prefdata.backends import ChatRequest, RequestCache, SamplingParams, grammar, run_requests, structured
from prefdata.backends.transformers_backend import TransformersBackend
from prefdata.judge import prompts
from prefdata.judge.parsing import parse_score, parse_verdict

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not grammar.available(), reason="llguidance is not installed")]
ASPECTS = ["helpfulness", "accuracy"]
GREEDY = {"temperature": 0.0, "top_p": 1.0}


@pytest.fixture(scope="module")
def backend(embedded_model):
    return TransformersBackend("SmolLM2-135M-Instruct", path=str(embedded_model), batch_size=4)


def judge_requests(max_tokens: int, budget: int | None = None, logprobs: int = 0) -> list[ChatRequest]:
    """A pairwise and a rubric request on real answers (LLaMA-Factory's DPO demo), as the judge sends them."""
    row = json_rows(DPO_DEMO)[1]
    prompt = [{"role": "user", "content": row["conversations"][-1]["value"][:300]}]
    chosen, rejected = row["chosen"]["value"][:300], row["rejected"]["value"][:300]
    params = SamplingParams(max_tokens=max_tokens, logprobs=logprobs, **GREEDY)
    budget = budget or max_tokens
    pairwise = prompts.shape("transformers", prompts.VERDICT_SCHEMA, prompts.PAIRWISE_PREFILL, budget)
    rubric = prompts.shape("transformers", prompts.score_schema(ASPECTS), prompts.pointwise_prefill(ASPECTS),
                           budget, 10)
    return [ChatRequest.of(prompts.pairwise(prompt, chosen, rejected), params=params, **pairwise),
            ChatRequest.of(prompts.pointwise(prompt, chosen, ASPECTS, 10), params=params, **rubric)]


def test_the_judge_asks_local_backends_for_a_bounded_schema():
    shaped = prompts.shape("transformers", prompts.VERDICT_SCHEMA, prompts.PAIRWISE_PREFILL, 40)
    schema = shaped["json_schema"]
    assert "prefill" not in shaped and schema["required"][0] == "winner"
    assert schema["properties"]["score_a"] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert schema["properties"]["rationale"]["maxLength"] == 3 * (40 - prompts.GRAMMAR_OVERHEAD)
    assert prompts.shape("openai", prompts.VERDICT_SCHEMA, "", 40) == {"json_schema": prompts.VERDICT_SCHEMA}
    order = grammar.ordered(json.loads(ChatRequest((), json_schema=schema).json_schema))  # keys sorted, then reordered
    assert list(order["properties"]) == ["winner", "score_a", "score_b", "rationale"]


def test_constrained_answers_parse_and_validate(backend):
    requests = judge_requests(40)
    answers = backend.generate(requests)
    for request, answer in zip(requests, answers):
        assert answer.error is None, answer
        assert structured.parse(answer.text, request.schema)[1] is None
    verdict, score = parse_verdict(answers[0].text, scale=10), parse_score(answers[1].text, ASPECTS, 10)
    assert verdict.winner in {"a", "b", "tie"} and 1 <= verdict.score_a <= 10, verdict
    assert score.score is not None and set(score.aspects) == set(ASPECTS), score


def test_an_answer_near_its_budget_is_steered_to_close(backend):
    """The schema allows a long rationale (made for 96 tokens) but the request has 30: the object still closes."""
    requests = judge_requests(30, budget=96)
    answers = backend.generate(requests)
    for request, answer in zip(requests, answers):
        assert answer.error is None and answer.tokens_out <= 30, answer
        assert structured.parse(answer.text, request.schema)[1] is None


def test_an_answer_cut_by_a_tiny_budget_is_an_invalid_json_row(backend):
    answers = backend.generate(judge_requests(6))
    for answer in answers:
        assert answer.finish_reason == "length" and answer.reason == "invalid_json" and answer.text, answer
    # The judge reads the cut text: the verdict comes first, so a cut object (repaired by the bounded scanner)
    # can still give it; otherwise the row says why. Never an exception.
    verdict, score = parse_verdict(answers[0].text, scale=10), parse_score(answers[1].text, ASPECTS, 10)
    assert (verdict.winner is None) == (verdict.error is not None)
    assert (score.score is None) == (score.error is not None)


def test_logprobs_join_to_the_answer_and_come_from_the_raw_distribution(backend, tmp_path):
    plain = ChatRequest.of([{"role": "user", "content": "Say hello in French and in Japanese, with an emoji."}],
                           params=SamplingParams(max_tokens=24, logprobs=3, **GREEDY))
    requests = [plain, *judge_requests(40, logprobs=3)]
    cache = RequestCache(tmp_path / "cache.sqlite")
    answers = run_requests(backend, requests, cache)
    for request, answer in zip(requests, answers):
        assert answer.logprobs is not None and len(answer.logprobs) == answer.tokens_out > 0
        joined = "".join(text for text, _, _ in answer.logprobs)
        if request.json_schema is None:
            assert joined == answer.text
        else:  # the answer's text is the canonical JSON of what was generated
            assert json.loads(joined) == json.loads(answer.text)
        for text, logprob, alternatives in answer.logprobs:
            assert 0 < math.exp(logprob) <= 1 and len(alternatives) <= 3
            assert all(0 < math.exp(v) <= 1 for v in alternatives.values())
            assert logprob <= max(alternatives.values()) + 1e-4  # the top-k include the likeliest token
    for text, logprob, alternatives in answers[0].logprobs:  # greedy and unconstrained: the likeliest token
        assert logprob == pytest.approx(max(alternatives.values()), abs=1e-4)
    # a grammar-forced token keeps the model's own probability, not the mask's certainty
    assert any(logprob < -1e-3 for _, logprob, _ in answers[1].logprobs)
    again = run_requests(backend, requests, cache)
    assert cache.hits == len(requests) and [a.logprobs for a in again] == [a.logprobs for a in answers]
    without = backend.generate([ChatRequest.of(plain.as_messages(), params=SamplingParams(max_tokens=4, **GREEDY))])
    assert without[0].logprobs is None and without[0].text


def test_token_texts_keep_multibyte_characters_whole(backend):
    from prefdata.backends.transformers_backend import token_texts

    tokenizer = backend._network()[0]
    text = "Bonjour 👋 こんにちは, café"
    tokens = tokenizer(text, add_special_tokens=False)["input_ids"]
    texts = token_texts(tokenizer, tokens)
    assert "".join(texts) == tokenizer.decode(tokens) == text and "\ufffd" not in "".join(texts)
    assert "" in texts  # the emoji and the kana are several byte-level tokens each: the last carries them


def test_without_the_engine_the_prompt_and_check_path_still_works(backend, monkeypatch):
    monkeypatch.setitem(sys.modules, grammar.ENGINE, None)  # `import llguidance` now fails
    assert not grammar.available()
    assert prompts.shape("transformers", prompts.VERDICT_SCHEMA, prompts.PAIRWISE_PREFILL, 40) == \
        {"prefill": prompts.PAIRWISE_PREFILL}
    shown = judge_requests(24)[0]  # the prefilled request the judge now sends; a caller may still give a schema
    assert shown.json_schema is None and shown.prefill == prompts.PAIRWISE_PREFILL
    request = ChatRequest(shown.messages, shown.params, json_schema=prompts.VERDICT_SCHEMA)
    monkeypatch.setattr("prefdata.backends.transformers_backend._warned", False)
    with pytest.warns(RuntimeWarning, match="not installed"):
        [answer] = TransformersBackend(backend.model, path=backend.path, schema_retries=0).generate([request])
    assert answer.text is not None and (answer.error is None or answer.reason == "invalid_json")
