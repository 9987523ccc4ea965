"""Judge output is hostile input (issue 12 §4): the structured-output check reads any answer in bounded time and
depth, without raising."""

import pytest

from prefdata.backends.structured import parse

K100 = 100_000


@pytest.mark.parametrize("text", ["{" * K100, "[" * K100, '{"' * (K100 // 2), '{"a": ' + "9" * 5_000 + "}",
                                  "1" * 5_000, "```" + " " * 2_000 + "x", "[" * 900 + "]" * 900,
                                  '{"winner": ' + "[" * 40 + "]" * 40 + "}", '{"winner": "A", ' * 2_000])
def test_structured_answer_check_survives_hostile_text(text):
    value, why = parse(text, {"type": "object", "required": ["winner"]})
    assert value is None and why
