"""Judge output is hostile input (issue 12 §4): any text parses in bounded depth without raising, and a judge
stage fed such answers ends with rows that say why, cached, so a re-run neither crashes nor asks again."""

import json

import polars as pl
import pytest

from prefdata.backends import ChatResponse, RequestCache
from prefdata.backends.structured import parse
from prefdata.context import Context
from prefdata.judge import parse_score, parse_verdict
from prefdata.judge.stage import judge
from prefdata.spec import JudgeSpec

K100 = 100_000
# (text, the reason it is unreadable): the worst cases of issue 12 at 100 KB, and the same shapes within the
# 32,000 characters the scanner reads, where its own depth and object bounds must hold.
WORST = [
    ("{" * 300, "too_deep"), ('{"' * 250, "too_deep"),
    ("{" * K100, "too_deep"), ('{"' * (K100 // 2), "too_deep"), ("[" * K100, "too_long"),
    ("x" * K100, "too_long"), ('"' * K100, "too_long"), ('{"winner": "' + "x" * K100, "invalid_winner"),
    ('{"a": 1}' * (K100 // 8), "too_long"), ("ok " + '{"winner": "A"}' * (K100 // 15), "too_long"),
    ("{" * 30_000, "too_deep"), ('{"' * 15_000, "too_deep"), ("[" * 30_000, "no_verdict"),
    ("{'" * 15_000, "too_deep"), ("x" * 30_000, "no_verdict"), ("ok " + '{"winner": "A"}' * 1_000, "too_many_objects"),
    ('{"a": 1}' * 3_000, "too_many_objects"), ('ok {"winner": "A", "x": "' + "y" * 30_000, "unreadable_object"),
    ('ok {"rationale": "' + "it's, " * 5_000 + '"}', "no_verdict"),
    ('{"winner": "A", "x": ' + "[" * 9 + "]" * 9 + "}", "too_deep"), ('ok {"a": "' + '\\"' * 15_000, "too_complex"),
    ('ok {"a": ' + "[]" * 15_000, "too_complex"),
]


@pytest.mark.parametrize("text, reason", WORST, ids=[f"{t[:12]!r}x{len(t)}" for t, _ in WORST])
def test_worst_case_judge_output_is_unreadable_with_its_reason(text, reason):
    verdict = parse_verdict(text)
    assert verdict.winner is None and verdict.error.split(":")[0] == reason
    score = parse_score(text.replace("winner", "score"), ["helpfulness"], scale=10)
    assert score.score is None and score.error


def test_a_leading_verdict_is_read_whatever_follows():
    assert parse_verdict('{"winner": "B", "score_a": 2, "score_b": 9}' + "{" * K100).winner == "b"
    assert parse_verdict('{"winner": "A", "x": ' + "[" * 7 + "]" * 7 + "}").winner == "a"  # nesting within bounds
    long_rationale = '{"winner": "B", "rationale": "' + "because, " * 1_000  # cut off by max_tokens
    assert parse_verdict(long_rationale).winner == "b"
    assert parse_score('{"scores": {"helpfulness": 8}, "rationale": "' + "'" * K100, ["helpfulness"], 10).score == 8


@pytest.mark.parametrize("text", ["{" * K100, "[" * K100, '{"' * (K100 // 2), '{"a": ' + "9" * 5_000 + "}",
                                  "1" * 5_000, "```" + " " * 2_000 + "x", "[" * 900 + "]" * 900,
                                  '{"winner": ' + "[" * 40 + "]" * 40 + "}", '{"winner": "A", ' * 2_000])
def test_structured_answer_check_survives_hostile_text(text):
    value, why = parse(text, {"type": "object", "required": ["winner"]})
    assert value is None and why


def test_structured_answer_naming_a_key_twice_is_refused():
    assert parse('{"winner": "A", "score_a": 9, "winner": "B"}', {"type": "object"}) == (None, "duplicate key 'winner'")


def planted(prompt_text: str) -> str:
    """The text the answer shown first in a judge prompt asks the judge to say (after `PLANT:`, as JSON)."""
    return json.loads(prompt_text.split("PLANT:", 1)[1].split("\n", 1)[0])


class Scripted:
    """A local judge (prefilled, like the transformers backend) that continues its prefill with the text
    planted in the first answer it is shown. The model is what this stands in for: asking, parsing, the
    request cache and the stage are the real ones."""

    name, model, batch_size = "scripted", "hostile-judge", 4

    def __init__(self):
        self.asked = 0

    def generate(self, requests):
        self.asked += len(requests)
        return [ChatResponse(planted(r.messages[1][1]), "stop", 10, 10) for r in requests]


# What a judge continues its prefill with, and the reason the row must give (None: a readable verdict).
PAIRWISE_HOSTILE = {
    "{" * 300: "invalid_winner", '", "a": "' + '{"' * 250: "too_deep", '", "x": ' + "[" * K100: "too_deep",
    'B", "score_a": NaN, "score_b": 3}': "invalid_score", 'Dance"}': "invalid_winner",
    'BFFFE88A0F08", "score_a": 5, "score_b": 5}': "invalid_winner",
    'A", "score_a": 1e999, "score_b": 2}': "invalid_score",
    'B", "score_a": 2, "score_b": 9} and A said {"winner": "A"} [[A]]': None,
}
POINTWISE_HOSTILE = {
    "{" * 300: "too_deep", '{"' * 250: "too_deep", "NaN}}": "invalid_score", "11}}": "invalid_score",
    "true}}": "invalid_score", '"inf"}}': "invalid_score", "8}} ... the answer says {\"score\": 10}": None,
    "-1e999}}": "invalid_score",
}
SCORED = {"pairwise": PAIRWISE_HOSTILE, "pointwise": POINTWISE_HOSTILE}


def hostile_candidates(texts) -> tuple[pl.DataFrame, pl.DataFrame]:
    prompts = pl.DataFrame({"prompt_id": ["p"], "prompt": [[{"role": "user", "content": "q"}]], "source": ["t"]})
    answers = [f"answer {i}\nPLANT:{json.dumps(text)}\n" for i, text in enumerate(texts)]
    return prompts, pl.DataFrame({"prompt_id": "p", "candidate_id": [f"c{i}" for i in range(len(answers))],
                                  "response": answers})


def judge_twice(tmp_path, spec, make_backend, texts):
    """Judge the hostile candidates twice on one cache; (judgments or scores, requests sent) per run."""
    prompts, candidates = hostile_candidates(texts)
    runs = []
    for _ in range(2):
        backend = make_backend()
        ctx = Context(cache=RequestCache(tmp_path / "cache.sqlite"), quiet=True,
                      backends={spec.backend.model_dump_json(): backend})
        result = judge(candidates, [spec], ctx, prompts=prompts)
        table = result.tables["scores"] if spec.kind == "pointwise" else result.kept
        runs.append((table, ctx.cache.misses))
        ctx.cache.close()
    return runs


@pytest.mark.parametrize("kind", ["pairwise", "pointwise"])
def test_a_prefilled_judge_fed_hostile_answers_ends_with_rows_that_say_why(tmp_path, kind):
    from prefdata.judge import prompts as judge_prompts
    from prefdata.judge.asking import RETRY_MARK

    spec = JudgeSpec(name="hostile", kind=kind, retries=1, swap=False, backend={"kind": "transformers", "model": "x"},
                     rubric={"aspects": ["helpfulness"], "scale": 10})
    (first, sent), (second, sent_again) = judge_twice(tmp_path, spec, Scripted, list(SCORED[kind]))
    assert sent > 0 and sent_again == 0  # the re-run took every answer, re-asks included, from the cache
    assert first.equals(second)
    prefill = judge_prompts.PAIRWISE_PREFILL if kind == "pairwise" else judge_prompts.pointwise_prefill(["helpfulness"])
    assert first.height == (28 if kind == "pairwise" else 8) and first["raw"].null_count() == 0
    for row in first.iter_rows(named=True):
        expected = SCORED[kind][row["raw"].split(RETRY_MARK)[-1][len(prefill):]]
        assert row["parse_ok"] == (expected is None) and row["attempts"] == (1 if expected is None else 2)
        assert (row["error"] or "").split(":")[0] == (expected or ""), row["error"]


# Native structured output (OpenAI response_format): the answer is checked against the schema in the backend.
STRUCTURED_HOSTILE = {
    "{" * 300: "too_deep", '{"' * 250: "too_deep", "[" * K100: "too_long", "```" + " " * 2_000: "no_verdict",
    json.dumps({"winner": "Dance", "score_a": 5, "score_b": 5, "rationale": "r"}): "invalid_winner",
    json.dumps({"winner": "B", "score_a": 2, "score_b": 9, "rationale": "r"}): None,
}


def test_an_api_judge_fed_hostile_answers_ends_with_rows_that_say_why(tmp_path, monkeypatch):
    import fake_llm
    from fake_llm import FakeLLM
    from prefdata.backends.openai_backend import OpenAIBackend

    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setattr(fake_llm, "answer_text", lambda body: planted(fake_llm.text_of(body)))
    with FakeLLM() as fake:
        backend = {"kind": "openai", "model": "fake-gpt", "base_url": fake.url + "/v1", "schema_retries": 1}
        # max_tokens: the fake server cuts its answer after that many words
        spec = JudgeSpec(name="api", retries=1, swap=False, max_tokens=4_000, backend=backend)
        make = lambda: OpenAIBackend("fake-gpt", base_url=fake.url + "/v1", schema_retries=1)  # noqa: E731
        (first, sent), (second, sent_again) = judge_twice(tmp_path, spec, make, list(STRUCTURED_HOSTILE))
        assert sent > 0 and sent_again == 0 and first.equals(second)
    assert first.height == 15 and first["raw"].null_count() == 0
    for row in first.iter_rows(named=True):
        text = row["raw"].split("\n\n--- re-asked ---\n\n")[-1]
        expected = STRUCTURED_HOSTILE.get(text, "canonical")
        if expected == "canonical":  # a valid answer comes back as canonical JSON
            expected = STRUCTURED_HOSTILE[json.dumps(json.loads(text))]
        assert row["parse_ok"] == (expected is None) and (row["error"] or "").split(":")[0] == (expected or "")
