"""The dataset card says what its figures rest on: counts and intervals for judge figures, agreement only
between two or more judges, the length bias in words, and a training command that works offline."""

import polars as pl
import pytest

from conftest import DPO_DEMO, ROOT
from prefdata.io import read_dataset
from prefdata.judge.report import judge_report
from prefdata.judge.stage import JUDGMENTS
from prefdata.report.card import render_card
from prefdata.spec import load_spec

QUICKSTART = ROOT / "examples" / "quickstart" / "spec.yaml"


def _judgments():
    """smol-pairwise: 8 comparisons in both orders, 7 consistent; smol-rubric: pointwise on the same 8."""
    rows = []
    for i in range(8):
        second = "b" if i == 0 else "a"
        rows += [("smol-pairwise", f"p{i}", "ab", "a"), ("smol-pairwise", f"p{i}", "ba", second),
                 ("smol-rubric", f"p{i}", None, "a" if i % 2 else "b")]
    return pl.DataFrame([{"prompt_id": p, "judge": j, "a_id": f"{p}x", "b_id": f"{p}y", "order": o, "winner": w,
                          "score_a": None, "score_b": None, "rationale": None, "raw": "{}", "parse_ok": True,
                          "error": None, "attempts": 1, "gold": False} for j, p, o, w in rows], schema=JUDGMENTS)


def _longer_chosen_pairs(n=6):
    """Real demo pairs, each with the longer answer as chosen (the quickstart's 100%)."""
    frame = read_dataset(DPO_DEMO).frame
    length = lambda c: pl.col(c).list.last().struct.field("content").str.len_chars()  # noqa: E731
    return frame.filter(length("chosen") > length("rejected")).head(n).with_columns(
        pl.Series("agreement", [1.0, 0.5, None, 1.0, None, 1.0][:n]))


def _manifest(judging, passed=True):
    return {"fingerprint": "sha256:x", "tokens": {}, "versions": {"prefdata": "test"}, "counts": {},
            "judging": judging, "cost": {}, "validation": {"passed": passed, "checks": []}}


@pytest.fixture(scope="module")
def card():
    spec = load_spec(QUICKSTART)
    return render_card(spec, _longer_chosen_pairs(), _manifest(judge_report(_judgments(), "tie")))


def test_judge_figures_carry_count_interval_and_few(card):
    assert "88% (7 of 8 swapped comparisons; 95% CI 53% to 98%; few)" in card
    assert "0% (0 of 24 verdicts" not in card and "0% (0 of 16 verdicts; 95% CI 0% to 19%; few)" in card
    assert "no gold items" in card and "fewer than 30 items" in card


def test_agreement_is_between_two_judges_only(card):
    assert "| smol-pairwise / smol-rubric |" in card and "1.00" not in card and "n/a" not in card
    assert "every judge agreed on 75% (3 of 4 pairs with two or more verdicts" in card
    assert "2 pairs were decided by one judge alone" in card
    alone = judge_report(_judgments().filter(pl.col("judge") == "smol-rubric"), "tie")
    one = render_card(load_spec(QUICKSTART), _longer_chosen_pairs(), _manifest(alone))
    assert "needs two or more judges; this panel has one" in one
    same = _judgments().with_columns(winner=pl.lit("a"))  # one label each: kappa undefined
    card = render_card(load_spec(QUICKSTART), _longer_chosen_pairs(), _manifest(judge_report(same, "tie")))
    assert "| undefined (8 items: a judge gave one label only, or none) | 100% (8 of 8 items;" in card


def test_length_bias_in_words_when_every_pair_prefers_the_longer_answer(card):
    assert "100% (6 of 6 pairs; 95% CI 61% to 100%; few)" in card
    assert "Every pair prefers the longer answer" in card and "no length coefficient can be fitted" in card


def test_training_command_uses_the_embedded_model_not_a_hub_id(card):
    assert "HuggingFaceTB" not in card
    assert 'align train --method dpo --profile cpu --model "$(prefdata models path)" --data . --output ../prefdata-quickstart-dpo' in card
