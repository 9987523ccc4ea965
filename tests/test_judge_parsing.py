"""Verdicts are read as data: JSON (repaired when sloppy) or MT-Bench marks, never executed."""

import pytest

from prefdata.judge import parse_verdict


@pytest.mark.parametrize("text, winner, score_a, score_b", [
    ('{"winner": "A", "score_a": 8, "score_b": 3, "rationale": "A is right."}', "a", 8, 3),
    ('Sure! ```json\n{"winner": "B", "score_a": 2, "score_b": 9}\n``` Hope this helps.', "b", 2, 9),
    ("{'winner': 'tie', 'score_a': 5, 'score_b': 5,}", "tie", 5, 5),
    ('{"score_a": 7, "score_b": 4}', "a", 7, 4),
    ('{"winner": "Answer B"', "b", None, None),
    ("After careful thought, my verdict is [[B]].", "b", None, None),
    ("Both are fine: [[C]]", "tie", None, None),
    ("I cannot decide.", None, None, None),
    ('{"winner": "__import__(\'os\').system(\'echo pwned\')"}', None, None, None),
])
def test_parse_verdict(text, winner, score_a, score_b):
    verdict = parse_verdict(text)
    assert (verdict.winner, verdict.score_a, verdict.score_b) == (winner, score_a, score_b)


# Verdicts in the formats of established judge prompts, so existing judge outputs can be re-scored.
MT_BENCH_PAIR = ("Assistant A gives a correct, concise answer while Assistant B confuses the two cities. "
                 "Therefore, my final verdict is: [[A]]")
MT_BENCH_SINGLE = "The response is accurate and helpful, though brief. Rating: [[8]]"
PROMETHEUS_ABS = "Feedback: The response addresses the question but lacks detail. [RESULT] 3"
PROMETHEUS_REL = "Feedback: Response B is more complete and accurate than Response A. [RESULT] B"


@pytest.mark.parametrize("text, winner", [
    (MT_BENCH_PAIR, "a"), (PROMETHEUS_REL, "b"), ("Both are equally good. [[C]]", "tie"),
    ("I considered [[A]] at first, but my final verdict is [[B]]", "b"),
    ('Reasoning first. {"winner": "A"} was my draft; final: {"winner": "B", "score_a": 3, "score_b": 7}', "b"),
    ('{"winner": "B", "rationale": "uses {braces} and \\"quotes\\""} trailing words {"winner": "A"}', "b"),
])
def test_established_pairwise_formats(text, winner):
    assert parse_verdict(text).winner == winner


@pytest.mark.parametrize("text, aspects, score", [
    (MT_BENCH_SINGLE, None, 8.0),
    (PROMETHEUS_ABS, None, 3.0),
    ("Rating: 7", None, 7.0),
    ('{"score": 4, "rationale": "ok"}', None, 4.0),
    ('{"scores": {"helpfulness": 8, "accuracy": 6, "noise": 100}, "score": 1}', ["helpfulness", "accuracy"], 7.0),
    ("{'scores': {'helpfulness': 9, 'accuracy': 7,}}", ["helpfulness", "accuracy"], 8.0),
    ("no score here", None, None),
])
def test_parse_score(text, aspects, score):
    from prefdata.judge import parse_score

    assert parse_score(text, aspects).score == score
