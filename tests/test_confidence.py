"""Judge confidence from token log-probabilities, end to end: real builds against the fake OpenAI and
Anthropic servers on loopback (real HTTP, real SDKs), the panel's confidence weighting, `filter
--min-confidence`, and hostile log-probability payloads."""

import json
import math

import polars as pl
import pytest
import yaml
from conftest import DPO_DEMO, run_cli
from fake_llm import FakeLLM, logprobs_of

from prefdata.backends import ChatRequest, SamplingParams
from prefdata.backends.openai_backend import OpenAIBackend, read_logprobs, read_reply
from prefdata.io import read_dataset
from prefdata.judge import confidence
from prefdata.judge.panel import decide, resolve
from prefdata.judge.stage import JUDGMENTS

N_PROMPTS = 6


def prompts() -> list[str]:
    """The first prompts of the LLaMA-Factory DPO demo (real user questions)."""
    return [turns[-1]["content"] for turns in read_dataset(DPO_DEMO).frame.head(N_PROMPTS)["prompt"].to_list()]


def write_spec(work, url, judges, **extra):
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts()))
    backend = {"kind": "openai", "model": "fake-gpt", "concurrency": 2, "max_attempts": 1, "base_url": url + "/v1"}
    spec = {"name": "confidence", "sources": [{"path": "prompts.jsonl"}],
            "generate": {"backend": backend, "n": 3, "max_tokens": 30}, "judges": judges, "curate": [],
            "cache": "cache.sqlite", "output": {"dir": "out"}, **extra}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    return work / "spec.yaml"


def judge(url, backend="openai", **more):
    base = url + ("/v1" if backend == "openai" else "")
    return {"backend": {"kind": backend, "model": f"fake-{backend}", "base_url": base, "max_attempts": 1,
                        "concurrency": 2}, **more}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One build with an OpenAI judge (with log-probabilities) on the fake server."""
    work = tmp_path_factory.mktemp("confidence")
    with FakeLLM() as fake:
        spec = write_spec(work, fake.url, [judge(fake.url, name="gpt")], panel={"pairing": "all_pairs"})
        done = run_cli("build", spec)
        bodies = fake.bodies("/chat/completions")
    assert done.returncode in (0, 1), done.stderr  # 1: validation of a tiny set may fail
    out = work / "out"
    return {"out": out, "done": done, "bodies": bodies, "work": work,
            "judgments": pl.read_parquet(out / "judgments.parquet"), "data": pl.read_parquet(out / "data.parquet")}


def test_openai_judges_ask_for_logprobs_and_generators_do_not(built):
    judging = [b for b in built["bodies"] if "impartial judge" in json.dumps(b)]
    generating = [b for b in built["bodies"] if "impartial judge" not in json.dumps(b)]
    assert judging and all(b["logprobs"] is True and b["top_logprobs"] == 20 for b in judging)
    assert generating and not any("logprobs" in b or "top_logprobs" in b for b in generating)


def test_judgments_have_confidence_and_probabilities_summing_to_one(built):
    gpt = built["judgments"].filter(pl.col("judge") == "gpt", pl.col("parse_ok"))
    assert gpt.height == N_PROMPTS * 3 * 2  # 3 pairs of candidates per prompt, 2 orders
    assert gpt["confidence"].null_count() == 0 and gpt["confidence"].is_between(0, 1).all()
    total = gpt.select(pl.col("p_a") + pl.col("p_b") + pl.col("p_tie")).to_series()
    assert ((total - 1).abs() < 1e-9).all()
    # the confidence is the probability of the verdict given, de-swapped like `winner`
    given = gpt.select(pl.when(pl.col("winner") == "a").then("p_a").when(pl.col("winner") == "b").then("p_b")
                       .otherwise("p_tie")).to_series()
    assert ((given - gpt["confidence"]).abs() < 1e-12).all()


def test_swapped_order_is_de_swapped(built):
    """Recompute each `ba` judgment's shown-order probabilities from the served tokens: p_a is what the judge
    gave the answer shown second."""
    rows = built["judgments"].filter(pl.col("judge") == "gpt", pl.col("order") == "ba")
    assert rows.height == N_PROMPTS * 3
    for row in rows.iter_rows(named=True):
        raw = row["raw"]
        shown = confidence.pairwise(read_logprobs(logprobs_of(raw, 20)), "", {"a": "b", "b": "a"}[row["winner"]])
        assert shown is not None
        assert shown["p_a"] == pytest.approx(row["p_b"]) and shown["p_b"] == pytest.approx(row["p_a"])
        assert json.loads(raw)["winner"] == {"a": "B", "b": "A"}[row["winner"]]


def test_pair_confidence_is_the_mean_probability_of_the_decision(built):
    data, judged = built["data"], built["judgments"]
    assert data.height and data["confidence"].is_between(0, 1).all()
    row = data.row(0, named=True)
    chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
    cands = pl.read_parquet(built["out"] / "candidates.parquet")
    ids = dict(cands.select("response", "candidate_id").iter_rows())
    c_id, r_id = ids[chosen], ids[rejected]
    mine = judged.filter(pl.col("parse_ok"), pl.col("confidence").is_not_null(),
                         ((pl.col("a_id") == c_id) & (pl.col("b_id") == r_id))
                         | ((pl.col("a_id") == r_id) & (pl.col("b_id") == c_id)))
    probs = [r["p_a"] if r["a_id"] == c_id else r["p_b"] for r in mine.iter_rows(named=True)]
    assert probs and row["confidence"] == pytest.approx(sum(probs) / len(probs))


def test_the_card_shows_each_judges_confidence(built):
    card = (built["out"] / "README.md").read_text()
    line = next(li for li in card.splitlines() if li.startswith("| gpt |"))
    assert "mean 0." in line and "below 0.6" in line
    assert "Judges' confidence in the kept pairs' decisions:** mean" in card
    manifest = json.loads((built["out"] / "manifest.json").read_text())
    figure = manifest["judging"]["judges"]["gpt"]["confidence"]
    gpt = built["judgments"].filter(pl.col("judge") == "gpt")
    assert figure["low"]["n"] == gpt.height and figure["mean"] == pytest.approx(gpt["confidence"].mean())
    assert figure["low"]["k"] == int((gpt["confidence"] < 0.6).sum())


def test_anthropic_judge_has_no_confidence_and_the_card_says_so(tmp_path):
    with FakeLLM() as fake:
        judges = [judge(fake.url, name="gpt"), judge(fake.url, "anthropic", name="claude")]
        spec = write_spec(tmp_path, fake.url, judges)
        done = run_cli("build", spec)
    assert done.returncode in (0, 1), done.stderr
    judged = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    claude = judged.filter(pl.col("judge") == "claude")
    assert claude.height == N_PROMPTS * 3 * 2 and claude["parse_ok"].all()  # verdicts, read
    assert claude["confidence"].null_count() == claude.height and claude["p_a"].null_count() == claude.height
    card = (tmp_path / "out" / "README.md").read_text()
    line = next(li for li in card.splitlines() if li.startswith("| claude |"))
    assert "not available from the anthropic backend" in line
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["judging"]["judges"]["claude"]["confidence"] is None


def test_filter_min_confidence_drops_with_reason_and_counts_nulls(built, tmp_path):
    data = built["data"]
    bound = float(data["confidence"].median())
    blank = data.head(2).with_columns(pl.lit(None, dtype=pl.Float64).alias("confidence"),
                                      pl.concat_str([pl.col("pair_id"), pl.lit("x")]).alias("pair_id"))
    source = tmp_path / "pairs.parquet"
    pl.concat([data, blank]).write_parquet(source)
    done = run_cli("filter", source, tmp_path / "kept.parquet", "--min-confidence", bound, "--json")
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    below = int((data["confidence"] < bound).sum())
    assert below and figures["dropped"] == {"low_confidence": below}
    assert figures["kept_without_confidence"] == 2 and figures["rows_out"] == data.height + 2 - below
    kept = pl.read_parquet(tmp_path / "kept.parquet")
    assert kept["confidence"].null_count() == 2 and (kept["confidence"].drop_nulls() >= bound).all()
    said = run_cli("filter", source, tmp_path / "kept2.parquet", "--min-confidence", bound)
    assert "2 rows have no confidence" in said.stderr and "kept, not tested" in said.stderr
    bad = run_cli("filter", source, tmp_path / "x.parquet", "--min-confidence", "1.5")
    assert bad.returncode == 2 and "--min-confidence" in bad.stderr


def test_min_confidence_on_pairs_without_the_column_keeps_them_and_adds_nothing():
    from prefdata.curate.config import FilterConfig
    from prefdata.curate.filters import filter_pairs, unrated

    frame = pl.DataFrame({"pair_id": ["p1", "p2"], "prompt": ["a", "b"], "chosen": ["x", "y"], "rejected": ["z", "w"]})
    kept, dropped = filter_pairs(frame, FilterConfig(min_confidence=0.9))
    assert kept.columns == frame.columns and kept.height == 2 and dropped.height == 0
    assert unrated(kept) == 2


def test_curate_step_min_confidence_in_a_build(built):
    """The build again from its cache, with a filter step: drops are counted and nulls kept and said."""
    work = built["work"]
    spec = yaml.safe_load((work / "spec.yaml").read_text())
    bound = float(built["data"]["confidence"].median())
    spec["curate"] = [{"step": "filter", "min_confidence": bound}]
    spec["output"] = {"dir": "out2"}
    (work / "spec2.yaml").write_text(yaml.safe_dump(spec))
    with FakeLLM() as fake:  # everything comes from the cache; nothing may be asked
        done = run_cli("build", work / "spec2.yaml")
        assert not fake.received, "a rebuild from the cache asked the server"
    assert done.returncode in (0, 1), done.stderr
    manifest = json.loads((work / "out2" / "manifest.json").read_text())
    counts = manifest["counts"]["filter"]
    assert counts["dropped"] == {"low_confidence": int((built["data"]["confidence"] < bound).sum())}
    assert counts["kept_without_confidence"] == 0


def test_panel_weight_confidence_changes_a_majority():
    """Two unsure judges say a, one sure judge says b: one judge one vote gives a, confidence weighting b."""
    rows = [("u1", "a", 0.4), ("u2", "a", 0.45), ("sure", "b", 0.99)]
    frame = pl.DataFrame([{"prompt_id": "p", "judge": j, "a_id": "x", "b_id": "y", "order": None, "winner": w,
                           "score_a": None, "score_b": None, "rationale": None, "raw": "{}", "parse_ok": True,
                           "error": None, "attempts": 1, "gold": False, "confidence": c, "p_a": None, "p_b": None,
                           "p_tie": None} for j, w, c in rows], schema=JUDGMENTS)
    equal, _ = decide(resolve(frame), "majority", {})
    weighted, _ = decide(resolve(frame), "majority", {}, "confidence")
    assert equal["decision"].item() == "a" and weighted["decision"].item() == "b"
    assert weighted["agreement"].item() == pytest.approx(1 / 3)  # agreement still counts judges
    unrated = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("confidence"))  # no confidence: weight 1
    assert decide(resolve(unrated), "majority", {}, "confidence")[0]["decision"].item() == "a"


def test_panel_weight_in_a_build_from_the_cache(built):
    work = built["work"]
    spec = yaml.safe_load((work / "spec.yaml").read_text())
    spec["panel"] = {"pairing": "all_pairs", "weight": "confidence"}
    spec["output"] = {"dir": "out3"}
    (work / "spec3.yaml").write_text(yaml.safe_dump(spec))
    done = run_cli("build", work / "spec3.yaml")
    assert done.returncode in (0, 1), done.stderr
    assert pl.read_parquet(work / "out3" / "data.parquet")["confidence"].is_between(0, 1).all()
    spec["panel"] = {"weight": "loudness"}
    (work / "bad.yaml").write_text(yaml.safe_dump(spec))
    bad = run_cli("build", work / "bad.yaml")
    assert bad.returncode == 2 and "weight" in bad.stderr


def test_prefill_repeated_by_the_server_trims_its_tokens():
    with FakeLLM() as fake:
        backend = OpenAIBackend("fake", base_url=fake.url + "/v1", max_attempts=1)
        request = ChatRequest.of([{"role": "system", "content": "You are an impartial judge."},
                                  {"role": "user", "content": "A or B?"}], prefill='{"winner": "',
                                 params=SamplingParams(temperature=0, logprobs=50))
        answer = backend.generate([request])[0]
        assert fake.bodies()[0]["top_logprobs"] == 20  # capped at OpenAI's maximum
    assert "".join(t for t, _, _ in answer.logprobs) == answer.text
    winner = json.loads(request.prefill + answer.text)["winner"].lower()
    sure = confidence.pairwise(answer.logprobs, request.prefill, winner)
    assert sure is not None and sure["confidence"] >= 0.5
    assert abs(sum(sure[k] for k in ("p_a", "p_b", "p_tie")) - 1) < 1e-9


def test_pointwise_reads_split_and_whole_multi_digit_scores():
    text = '{"scores": {"helpfulness": 10, "accuracy": 3}, "rationale": "fine"}'
    split = read_logprobs(logprobs_of(text, 20))  # `1`, `0`: the next token tells 10 from 1
    expected, sure = confidence.pointwise(split, "", {"helpfulness": 10.0, "accuracy": 3.0}, 10)
    assert 1 <= expected <= 10 and 0 < sure <= 1
    whole = [[t, lp, alts] for t, lp, alts in split]  # the same answer from a tokenizer with `10` as one token
    at = next(i for i, (t, _, _) in enumerate(whole) if t == " 1")
    whole[at:at + 2] = [[" 10", -0.1, {" 10": -0.1, " 9": -2.5, " 8": -4.0}]]
    exp_whole, sure_whole = confidence.pointwise(whole, "", {"helpfulness": 10.0, "accuracy": 3.0}, 10)
    assert 1 <= exp_whole <= 10 and 0 < sure_whole <= 1
    assert confidence.pointwise(split, "", {"helpfulness": 1.0, "accuracy": 3.0}, 10) == (None, None)  # not given
    prefill = '{"scores": {"helpfulness": '
    tail = read_logprobs(logprobs_of(text, 20), len(prefill))
    assert confidence.pointwise(tail, prefill, {"helpfulness": 10.0, "accuracy": 3.0}, 10)[0] is not None


HOSTILE = [
    None, "nope", 7, {}, {"content": None}, {"content": "x"}, {"content": [1, 2]},
    {"content": [{"token": "{", "logprob": float("nan")}]},
    {"content": [{"token": 5, "logprob": -1}]},
    {"content": [{"token": "{", "logprob": True}]},
    {"content": [{"token": "{", "logprob": 10**400}]},
    {"content": [{"token": "{", "logprob": -0.1, "top_logprobs": 3}]},
    {"content": [{"token": "{", "logprob": -0.1, "top_logprobs": [{"token": "x", "logprob": "high"}, "y"]}]},
    {"content": [{"token": "{", "logprob": 5.0}]},
    {"content": [{"token": "a" * 10, "logprob": -0.1, "top_logprobs": []}] * 20_000},
]


@pytest.mark.parametrize("payload", range(len(HOSTILE)))
def test_hostile_logprob_payloads_never_fail_the_answer(payload):
    reply = {"choices": [{"message": {"content": '{"winner": "A"}'}, "logprobs": HOSTILE[payload]}]}
    answer = read_reply(reply)
    assert answer.text == '{"winner": "A"}'
    sure = confidence.pairwise(answer.logprobs, "", "a")
    assert sure is None or 0 <= sure["confidence"] <= 1


def sane(result):
    return result is None or all(0 <= v <= 1 and not math.isnan(v) for v in result.values())


def test_hostile_token_lists_in_the_reader():
    verdict = [['{"', -0.1, {}], ["winner", -0.1, {}], ['":', -0.1, {}], [' "', -0.1, {}]]
    cases = [
        verdict + [["A", -0.1, {"B": float("nan"), "tie": float("inf"), "A": 3.0}]],
        verdict + [["A", -1e308, {"B": -1e308}]],  # underflows to zero mass
        verdict + [["A", -0.1, {"B": "x", 5: -1.0, None: -1.0}]],
        verdict + [["A", -0.1, {f"B{i}": -0.1 for i in range(100_000)}]],
        verdict + [["A", -0.1]],
        verdict + [[None, -0.1, {}]],
        [["A", -0.1, {"B": -0.2}]] * 100_000,
        "not a list", [], [[]], [["x", "y", "z"]],
    ]
    for tokens in cases:
        assert sane(confidence.pairwise(tokens, "", "a"))
        expected, sure = confidence.pointwise(tokens, "", {"helpfulness": 3.0}, 10)
        assert sure is None or 0 <= sure <= 1


def test_a_quoted_verdict_cannot_fake_a_probability():
    """The leading object's verdict is read, never a verdict quoted in its rationale or in prose before it."""
    quoted = '{"winner": "A", "rationale": "Answer B says \\"winner\\": \\"B\\" {\\"winner\\": \\"B\\"}"}'
    tokens = read_logprobs(logprobs_of(quoted, 20))
    assert confidence.pairwise(tokens, "", "b") is None  # the token at the verdict spells A, not B
    assert confidence.pairwise(tokens, "", "a")["confidence"] >= 0.5
    prose = 'Answer A wrote {"winner": "B"} but I prefer A. {"winner": "A"}'
    assert confidence.pairwise(read_logprobs(logprobs_of(prose, 20)), "", "a") is None  # no leading object
    assert confidence.pairwise(read_logprobs(logprobs_of(prose, 20)), "", "b") is None
    twice = '{"winner": "B", "Winner": "B"}'
    assert confidence.pairwise(read_logprobs(logprobs_of(twice, 20)), "", "b") is None  # a key given twice
    in_prefill = read_logprobs(logprobs_of('", "score_a": 3}', 20))
    assert confidence.pairwise(in_prefill, '{"winner": "A', "a") is None  # the verdict is not the judge's token


def test_pointwise_build_has_expected_scores_and_confidence(tmp_path):
    rubric = {"aspects": ["helpfulness", "accuracy"], "scale": 10}
    with FakeLLM() as fake:
        spec = write_spec(tmp_path, fake.url, [judge(fake.url, name="rubric", kind="pointwise", rubric=rubric)])
        done = run_cli("build", spec)
    assert done.returncode in (0, 1), done.stderr
    scores = pl.read_parquet(tmp_path / "out" / "scores.parquet")
    assert scores.height == N_PROMPTS * 3 and scores["parse_ok"].all()
    assert scores["confidence"].null_count() == 0 and scores["confidence"].is_between(0, 1).all()
    assert scores["expected_score"].null_count() == 0 and scores["expected_score"].is_between(1, 10).all()
    tens = scores.filter(pl.col("aspects").str.contains(": 10"))  # scores of 10: `1`, `0` tokens, read as 10
    assert tens.height == 0 or tens["confidence"].null_count() == 0
    judged = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    by_id = dict(scores.select("candidate_id", "confidence").iter_rows())
    for row in judged.iter_rows(named=True):  # a judgment of two scores: the product of their confidences
        assert row["confidence"] == pytest.approx(by_id[row["a_id"]] * by_id[row["b_id"]])
        assert row["p_a"] is None and row["order"] is None
    data = pl.read_parquet(tmp_path / "out" / "data.parquet")
    assert data.height and data["confidence"].is_between(0, 1).all()


def test_hostile_payloads_over_http_and_through_a_build(tmp_path):
    """The fake server sends each hostile payload as `choices[0].logprobs`: the answer stands every time, and a
    build whose judge gets NaN log-probabilities ends with readable verdicts and no confidence."""
    nan_payload = {"content": [{"token": '{"', "logprob": float("nan"), "top_logprobs": []}]}
    with FakeLLM() as fake:
        backend = OpenAIBackend("fake", base_url=fake.url + "/v1", max_attempts=1)
        request = ChatRequest.of([{"role": "system", "content": "You are an impartial judge."},
                                  {"role": "user", "content": "A or B?"}], params=SamplingParams(logprobs=5))
        for payload in [nan_payload, *HOSTILE[1:]]:
            fake.logprobs_payload = payload
            answer = backend.generate([request])[0]
            assert answer.error is None and json.loads(answer.text)["winner"] in ("A", "B")
            sure = confidence.pairwise(answer.logprobs, "", json.loads(answer.text)["winner"].lower())
            assert sure is None or 0 <= sure["confidence"] <= 1
        fake.logprobs_payload = nan_payload
        done = run_cli("build", write_spec(tmp_path, fake.url, [judge(fake.url, name="gpt")]))
    assert done.returncode in (0, 1), done.stderr
    judged = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    assert judged["parse_ok"].all() and judged["confidence"].null_count() == judged.height
    card = (tmp_path / "out" / "README.md").read_text()
    assert "not available (backend gives no token probabilities)" in card
