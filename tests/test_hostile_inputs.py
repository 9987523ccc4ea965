"""The hostile-input corpus (issue 12): every generated input ends as a clean one-line error or is handled
(good rows kept, bad ones set aside and counted); none as a traceback, a hang or a silently wrong result.

Slow: about 120 commands, each a fresh process, some on 50-100 MB inputs (several minutes on 2 cores).
`python tests/hostile/inputs.py` prints the same outcomes case by case.
"""

import pytest

from hostile.harness import DEFECTS, report, summary
from hostile.inputs import build, run

pytestmark = pytest.mark.slow


def test_the_corpus_has_no_traceback_hang_or_silently_wrong_result(tmp_path):
    cases, files = build(tmp_path)
    assert len(files) >= 60 and len({c.name for c in cases}) == len(cases)
    assert {c.argv[0] for c in cases} >= {"convert", "stats", "validate", "filter", "dedupe", "length-bias", "split",
                                          "export", "pii"}
    outcomes = run(cases, tmp_path)
    counts = summary(outcomes)
    assert {k: counts[k] for k in DEFECTS} == dict.fromkeys(DEFECTS, 0), report(outcomes)
    assert counts["clean_error"] + counts["handled"] == len(cases)
