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
