"""The panel and the pairing policies on judgment tables with planted verdicts."""

import json

import polars as pl
import pytest

from conftest import DPO_DEMO
from prefdata.io import read_dataset
from prefdata.judge.panel import bradley_terry, decide, resolve
from prefdata.judge.stage import JUDGMENTS
from prefdata.pair import pair
from prefdata.spec import PanelSpec


def judgments(rows):
    """rows: (judge, prompt_id, a_id, b_id, order, winner, score_a, score_b)."""
    return pl.DataFrame([
        {"prompt_id": p, "judge": j, "a_id": a, "b_id": b, "order": o, "winner": w, "score_a": sa, "score_b": sb,
         "rationale": None, "raw": "{}", "parse_ok": w is not None, "error": None, "attempts": 1, "gold": False}
        for j, p, a, b, o, w, sa, sb in rows], schema=JUDGMENTS)


def demo_tables(n_prompts=3, per_prompt=3):
    """Prompts and candidates with real texts from the LLaMA-Factory demo."""
    frame = read_dataset(DPO_DEMO).frame.head(n_prompts)
    prompts = frame.select("prompt_id", "prompt", "source")
    candidates = []
    for i, row in enumerate(frame.iter_rows(named=True)):
        texts = [row["chosen"][0]["content"], row["rejected"][0]["content"], f"Answer {i} number three."]
        candidates += [{"prompt_id": row["prompt_id"], "candidate_id": f"p{i}c{k}", "response": texts[k]}
                       for k in range(per_prompt)]
    return prompts, pl.DataFrame(candidates)


def test_resolve_swapped_orders():
    rows = judgments([
        ("j", "p", "x", "y", "ab", "a", 8, 3), ("j", "p", "x", "y", "ba", "a", 7, 4),      # consistent
        ("j", "p", "x", "z", "ab", "a", 6, 5), ("j", "p", "x", "z", "ba", "b", 4, 7),      # inconsistent
        ("j", "p", "y", "z", "ab", None, None, None), ("j", "p", "y", "z", "ba", "b", 2, 9),  # one readable
    ])
    tie = resolve(rows, "tie").sort("b_id", "a_id")
    assert tie.select("a_id", "b_id", "verdict", "consistent").rows() == [
        ("x", "y", "a", True), ("x", "z", "tie", False), ("y", "z", "b", None)]
    by_scores = resolve(rows, "scores").filter(pl.col("b_id") == "z", pl.col("a_id") == "x")
    assert by_scores["verdict"].item() == "b"  # mean scores 5 vs 6


def test_majority_agreement_and_ties():
    rows = judgments([
        ("j1", "p", "x", "y", None, "a", None, None), ("j2", "p", "x", "y", None, "a", None, None),
        ("j3", "p", "x", "y", None, "b", None, None),
        ("j1", "p", "x", "z", None, "a", None, None), ("j2", "p", "x", "z", None, "b", None, None),
    ])
    decided, strengths = decide(resolve(rows), "majority", {})
    got = {(r["a_id"], r["b_id"]): (r["decision"], r["agreement"]) for r in decided.iter_rows(named=True)}
    assert got[("x", "y")] == ("a", pytest.approx(2 / 3))
    assert got[("x", "z")] == ("tie", 0.0)
    assert dict(strengths.select("candidate_id", "strength").rows()) == {"x": 1.0, "y": -1.0, "z": 0.0}


def test_agreement_needs_two_judges():
    """A pair decided by one judge (the other gave no readable verdict) has no agreement, not 1.0."""
    rows = judgments([
        ("pairwise", "p", "x", "y", None, None, None, None), ("rubric", "p", "x", "y", None, "a", 8, 3),
        ("pairwise", "p", "x", "z", None, "a", 7, 2), ("rubric", "p", "x", "z", None, "a", 9, 1),
    ])
    decided, _ = decide(resolve(rows), "mean_score", {})
    got = {(r["a_id"], r["b_id"]): (r["judges"], r["agreement"]) for r in decided.iter_rows(named=True)}
    assert got[("x", "y")] == (["rubric"], None)
    assert got[("x", "z")] == (["pairwise", "rubric"], 1.0)


def test_mean_score_normalises_each_judges_scale():
    rows = judgments([
        ("ten", "p", "x", "y", None, "a", 6, 5),     # x ahead by 0.1 on a 1-10 scale
        ("five", "p", "x", "y", None, "b", 2, 4),    # y ahead by 0.4 on a 1-5 scale
    ])
    decided, _ = decide(resolve(rows), "mean_score", {"ten": 10, "five": 5})
    assert decided["decision"].item() == "b" and decided["agreement"].item() == 0.5


def test_bradley_terry_recovers_a_transitive_order():
    wins = [[0, 3, 4, 5], [1, 0, 3, 4], [0, 1, 0, 3], [0, 0, 1, 0]]
    strength = bradley_terry(__import__("numpy").array(wins, dtype=float))
    assert list(strength.argsort()[::-1]) == [0, 1, 2, 3] and strength.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("policy, expected", [
    ("all_pairs", {("p0c0", "p0c1"), ("p0c0", "p0c2"), ("p0c1", "p0c2")}),
    ("best_vs_each", {("p0c0", "p0c1"), ("p0c0", "p0c2")}),
    ("best_vs_worst", {("p0c0", "p0c2")}),
])
@pytest.mark.parametrize("method", ["majority", "mean_score", "bradley_terry"])
def test_pairing_policies_keep_every_row_on_record(policy, expected, method):
    prompts, candidates = demo_tables(n_prompts=1)
    pid = prompts["prompt_id"][0]
    rows = judgments([(j, pid, a, b, o, w, sa, sb)
                      for j in ("j1", "j2")
                      for (a, b, w, sa, sb) in (("p0c0", "p0c1", "a", 9, 5), ("p0c0", "p0c2", "a", 9, 2),
                                                ("p0c1", "p0c2", "a", 5, 2))
                      for o, ww in (("ab", w), ("ba", w))])
    result = pair(rows, PanelSpec(method=method, pairing=policy), candidates=candidates, prompts=prompts)
    texts = dict(candidates.select("response", "candidate_id").rows())
    got = {(texts[r["chosen"][0]["content"]], texts[r["rejected"][0]["content"]]) for r in result.kept.to_dicts()}
    assert got == expected
    assert result.kept.height + result.dropped.height == 3
    assert set(result.dropped["reason"]) <= {"not_selected"}
    assert result.kept["agreement"].to_list() == [1.0] * result.kept.height
    assert (result.kept["margin"] > 0).all()


def test_ties_and_unreadable_verdicts_are_never_paired():
    prompts, candidates = demo_tables(n_prompts=1)
    pid = prompts["prompt_id"][0]
    rows = judgments([
        ("j", pid, "p0c0", "p0c1", "ab", "a", None, None), ("j", pid, "p0c0", "p0c1", "ba", "b", None, None),
        ("j", pid, "p0c0", "p0c2", "ab", "tie", 5, 5), ("j", pid, "p0c0", "p0c2", "ba", "tie", 5, 5),
        ("j", pid, "p0c1", "p0c2", "ab", None, None, None), ("j", pid, "p0c1", "p0c2", "ba", None, None, None),
    ])
    result = pair(rows, PanelSpec(pairing="all_pairs"), candidates=candidates, prompts=prompts)
    assert result.kept.height == 0
    assert sorted(result.dropped["reason"]) == ["judge_unparsed", "panel_tie", "position_inconsistent"]


def test_an_unswapped_tie_is_a_panel_tie_not_position_inconsistent():
    prompts, candidates = demo_tables(n_prompts=1)
    pid = prompts["prompt_id"][0]
    rows = judgments([("j", pid, "p0c0", "p0c1", None, "tie", None, None)])  # one order only: nothing to compare
    result = pair(rows, PanelSpec(), candidates=candidates, prompts=prompts)
    assert result.kept.height == 0 and result.dropped["reason"].to_list() == ["panel_tie"]


def test_gold_rows_never_become_pairs():
    prompts, candidates = demo_tables(n_prompts=1)
    pid = prompts["prompt_id"][0]
    rows = judgments([("j", pid, "p0c0", "p0c1", None, "a", None, None)]).with_columns(pl.lit(True).alias("gold"))
    result = pair(rows, PanelSpec(), candidates=candidates, prompts=prompts)
    assert result.kept.height == 0 and result.dropped.height == 0


def test_judge_report_gold_accuracy_consistency_and_drop():
    from prefdata.judge.report import judge_report
    from prefdata.spec import GoldSpec

    gold = [("good", "gold:1", "c", "r", o, w, None, None) for o, w in (("ab", "a"), ("ba", "a"))] + \
           [("bad", "gold:1", "c", "r", o, w, None, None) for o, w in (("ab", "b"), ("ba", "b"))] + \
           [("good", "gold:2", "c2", "r2", o, "a", None, None) for o in ("ab", "ba")] + \
           [("bad", "gold:2", "c2", "r2", o, w, None, None) for o, w in (("ab", "a"), ("ba", None))]
    regular = [("good", "p", "x", "y", "ab", "a", 8, 2), ("good", "p", "x", "y", "ba", "b", 3, 7),
               ("bad", "p", "x", "y", "ab", "a", 9, 1), ("bad", "p", "x", "y", "ba", "a", 9, 1)]
    rows = judgments(gold + regular).with_columns(pl.col("prompt_id").str.starts_with("gold:").alias("gold"))
    report = judge_report(rows, "tie", GoldSpec(path="g.jsonl", min_accuracy=0.75, action="drop"))
    good, bad = report["judges"]["good"], report["judges"]["bad"]
    value = lambda figure: (figure["value"], figure["k"], figure["n"])  # noqa: E731
    assert (value(good["gold_accuracy"]), value(bad["gold_accuracy"])) == ((1.0, 2, 2), (0.5, 1, 2))
    assert value(good["position_consistency"]) == (pytest.approx(2 / 3, abs=1e-4), 2, 3)
    assert value(bad["position_consistency"]) == (1.0, 2, 2)
    assert value(bad["parse_failure_rate"]) == (pytest.approx(1 / 6, abs=1e-4), 1, 6)
    assert good["parse_failure_rate"]["value"] == 0 and good["parse_failure_rate"]["ci95"][1] > 0.3
    assert all(f["few"] for f in (good["gold_accuracy"], bad["position_consistency"]))  # a handful of items
    assert report["dropped_judges"] == ["bad"] and bad["flagged"] and not good["flagged"]
    assert report["agreement"]["good"]["bad"]["items"] == 1 and "good" not in report["agreement"]["good"]


def test_a_failed_judge_request_is_its_own_reason_not_an_unreadable_verdict():
    """No judge got an answer back (a transport failure): `judge_request_failed` with the error, which a re-run
    retries; an answer that came back unreadable stays `judge_unparsed`."""
    prompts, candidates = demo_tables(n_prompts=1)
    pid = prompts["prompt_id"][0]
    rows = judgments([("j", pid, "p0c0", "p0c1", o, None, None, None) for o in ("ab", "ba")]
                     + [("j", pid, "p0c0", "p0c2", o, None, None, None) for o in ("ab", "ba")])
    failed = (pl.col("a_id") == "p0c1") | (pl.col("b_id") == "p0c1")
    rows = rows.with_columns(pl.when(failed).then(None).otherwise(pl.col("raw")).alias("raw"),
                             pl.when(failed).then(pl.lit("backend_error: ConnectError: refused")).alias("error"))
    result = pair(rows, PanelSpec(pairing="all_pairs"), candidates=candidates, prompts=prompts)
    assert sorted(result.dropped["reason"]) == ["judge_request_failed", "judge_unparsed"]
    failed_row = result.dropped.filter(pl.col("reason") == "judge_request_failed").row(0, named=True)
    assert failed_row["detail"] == "backend_error: ConnectError: refused"
    assert "request_failed" not in json.loads(failed_row["record"])  # helpers stay out of the record
    assert result.dropped.filter(pl.col("reason") == "judge_unparsed")["detail"].to_list() == [None]
