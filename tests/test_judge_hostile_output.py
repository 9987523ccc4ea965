"""Judge output is hostile input (issue 12 §4): any text parses in bounded depth without raising."""

import json

import pytest

from prefdata.backends.structured import parse
from prefdata.judge import parse_score, parse_verdict

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
