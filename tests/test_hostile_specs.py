"""The hostile-spec corpus (tests/hostile/specs.py): every generated spec ends in a clean one-line error
that says what the case expects, or is handled as the case says; no traceback, hang or silent mistake."""

import pytest

from hostile.harness import report, summary
from hostile.specs import run_corpus, specs, wrong_messages


def test_the_corpus_is_large_enough():
    made = specs()
    assert len(made) >= 40 and len({s.name for s in made}) == len(made)


@pytest.mark.slow  # about two minutes: 78 runs of the command, closed-port builds among them
def test_no_hostile_spec_ends_in_a_traceback_a_hang_or_a_silent_mistake():
    outcomes, messages = run_corpus()
    counts = summary(outcomes)
    assert counts["traceback"] == counts["hang"] == counts["silently_wrong"] == 0, report(outcomes)
    assert wrong_messages(outcomes, messages) == []
    assert counts["clean_error"] == len(messages) and counts["handled"] == len(outcomes) - len(messages)
