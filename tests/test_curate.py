"""Curation steps on the shared real data and on synthetic data with planted cases.

Every step keeps input rows = kept + dropped, with a stage and a reason on each dropped row.
"""

import json

import numpy as np
import polars as pl
import pytest

from conftest import DPO_DEMO, HH
from prefdata import schema
from prefdata.curate import STEPS, run_step
from prefdata.curate.dedupe import exact as exact_dedupe
from prefdata.curate.config import (BalanceConfig, DecontaminateConfig, DedupeConfig, FilterConfig,
                                    NearDedupeConfig, SplitConfig)
from prefdata.curate.decontaminate import decontaminate
from prefdata.curate.filters import filter_pairs
from prefdata.curate.length_bias import balance, length_bias_report
from prefdata.curate.minhash import estimated_jaccard, exact_jaccard, signatures
from prefdata.curate.near_dedupe import near_dedupe, near_duplicate_clusters
from prefdata.curate.shingles import char_units, shingle_hashes
from prefdata.curate.split import assign_split, train_test
from prefdata.io import read_dataset

VOCAB = [f"w{i}" for i in range(4000)]
HANZI = list("的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行")


@pytest.fixture(scope="module")
def demo() -> pl.DataFrame:
    return read_dataset(DPO_DEMO).frame


@pytest.fixture(scope="module")
def hh() -> pl.DataFrame:
    return read_dataset(HH, on_error="skip").frame


def conserved(frame: pl.DataFrame, result: schema.StageResult, stage: str) -> None:
    assert result.kept.height + result.dropped.height == frame.height
    assert result.dropped.columns == list(schema.DROPPED)
    assert set(result.dropped["stage"]) <= {stage}
    assert result.dropped["reason"].null_count() == 0


def words(rng: np.random.Generator, n: int) -> list[str]:
    return list(rng.choice(VOCAB, n))


def edit(tokens: list[str], k: int, rng: np.random.Generator) -> list[str]:
    """k substitutions far apart: each kills `ngram` shingles, so Jaccard is known in advance."""
    out = list(tokens)
    for pos in np.linspace(10, len(out) - 10, k).astype(int):
        out[pos] = f"new{pos}"
    return out


def jaccard(a: str, b: str, n: int = 5) -> float:
    """Reference Jaccard of word n-gram sets, in plain Python."""
    sa, sb = ({tuple(t.lower().split()[i:i + n]) for i in range(len(t.split()) - n + 1)} for t in (a, b))
    return len(sa & sb) / len(sa | sb)


# ---- exact dedupe ---------------------------------------------------------------------------

def test_exact_dedupe_on_the_demo_keeps_first_and_records_the_rest(demo):
    result = exact_dedupe(demo)
    conserved(demo, result, "dedupe")
    repeats = demo.height - demo.select(pl.col("pair_id").n_unique()).item()
    assert result.dropped.height == repeats > 0
    assert set(result.dropped["reason"]) == {"exact_duplicate"}
    assert result.kept["pair_id"].n_unique() == result.kept.height
    # the first occurrence survives, in the original order
    assert result.kept["pair_id"].to_list() == demo["pair_id"].unique(maintain_order=True).to_list()


def test_dedupe_normalises_case_space_and_nfkc_and_drops_identical_pairs(demo):
    frame = demo.head(3)
    loud = frame.head(1).with_columns(
        pl.col("chosen").list.eval(pl.struct(pl.element().struct.field("role"),
                                             pl.element().struct.field("content").str.to_uppercase() + "  \n")),
        pl.lit(9.0).alias("margin"))
    wide = frame.slice(2, 1).with_columns(  # full-width letters are NFKC-equal to ASCII ones
        pl.col("prompt").list.eval(pl.struct(pl.element().struct.field("role"),
                                             pl.lit("\uff21") + pl.element().struct.field("content"))))
    narrow = frame.slice(2, 1).with_columns(
        pl.col("prompt").list.eval(pl.struct(pl.element().struct.field("role"),
                                             pl.lit("A") + pl.element().struct.field("content"))))
    same = frame.slice(1, 1).with_columns(pl.col("chosen").alias("rejected"))
    data = pl.concat([frame, loud, same, wide, narrow], how="vertical_relaxed")
    result = exact_dedupe(data, keep="highest_margin")
    conserved(data, result, "dedupe")
    reasons = result.dropped.group_by("reason").len().sort("reason").rows()
    assert reasons == [("exact_duplicate", 2), ("identical_chosen_rejected", 1)]
    assert result.kept.height == 4 and 9.0 in result.kept["margin"].to_list()  # highest margin survived


def test_prompt_level_dedupe_keeps_one_pair_per_prompt(hh):
    result = exact_dedupe(hh, DedupeConfig(level="prompt"))
    conserved(hh, result, "dedupe")
    assert result.kept.height == hh["prompt_id"].n_unique() < hh.height
    assert result.kept["prompt_id"].n_unique() == result.kept.height
    assert "duplicate_prompt" in set(result.dropped["reason"])


# ---- near dedupe ----------------------------------------------------------------------------

def test_near_duplicate_clusters_find_planted_copies_and_nothing_else():
    rng = np.random.default_rng(0)
    base = [words(rng, 200) for _ in range(400)]
    texts = [" ".join(t) for t in base]
    copies = {}  # copy row -> (source row, edits)
    for source in range(0, 120):
        k = 1 + source % 12  # 1..12 edits: Jaccard from about 0.95 down to about 0.55
        copies[len(texts)] = (source, k)
        texts.append(" ".join(edit(base[source], k, rng)).upper() if source % 5 == 0 else
                     " ".join(edit(base[source], k, rng)))
    clusters = near_duplicate_clusters(pl.Series(texts), threshold=0.8).to_numpy()
    for copy, (source, k) in copies.items():
        similar = jaccard(texts[copy], texts[source]) >= 0.8
        assert (clusters[copy] == clusters[source]) == similar, (k, jaccard(texts[copy], texts[source]))
    assert len(set(clusters[:400])) == 400  # unrelated random texts are never merged
    share = 1 - len(set(clusters)) / len(texts)
    expected = sum(jaccard(texts[c], texts[s]) >= 0.8 for c, (s, _) in copies.items()) / len(texts)
    assert share == pytest.approx(expected) and share > 0


def test_cjk_text_uses_character_ngrams():
    rng = np.random.default_rng(1)
    sources = ["".join(rng.choice(HANZI, 300)) for _ in range(30)]
    copies = [s[:100] + "很" + s[101:200] + "好" + s[201:] for s in sources[:10]]
    texts = pl.Series(sources + copies)
    assert char_units(texts).all()
    auto = near_duplicate_clusters(texts, unit="auto").to_numpy()
    assert all(auto[30 + i] == auto[i] for i in range(10))
    assert len(set(auto[:30])) == 30
    # without spaces every text is one "word": word n-grams see no near duplicate at all
    assert near_duplicate_clusters(texts, unit="words").n_unique() == 40


def test_verification_modes_and_banding():
    rng = np.random.default_rng(2)
    a = words(rng, 300)
    texts = pl.Series([" ".join(a), " ".join(edit(a, 12, rng))])  # Jaccard about 0.67
    j = jaccard(texts[0], texts[1])
    assert 0.6 < j < 0.75
    assert near_duplicate_clusters(texts, threshold=0.8, verify="exact").n_unique() == 2
    assert near_duplicate_clusters(texts, threshold=0.6, verify="exact").n_unique() == 1
    # the banding for 0.8 makes a 0.67 pair a candidate often, which is why candidates are verified
    assert near_duplicate_clusters(texts, threshold=0.6, verify="none").n_unique() == 1


def test_verification_in_small_chunks_gives_the_same_clusters(monkeypatch):
    """Candidate pairs are verified a chunk at a time: chunks of 3 pairs give what one chunk gives."""
    import prefdata.curate.near_dedupe as near

    rng = np.random.default_rng(3)
    base = [words(rng, 120) for _ in range(60)]
    texts = pl.Series([" ".join(t) for t in base] + [" ".join(edit(t, 1 + i % 8, rng)) for i, t in enumerate(base)])
    whole = near_duplicate_clusters(texts, threshold=0.8)
    monkeypatch.setattr(near, "PAIR_CHUNK", 3)
    assert near_duplicate_clusters(texts, threshold=0.8).to_list() == whole.to_list()
    assert 60 < whole.n_unique() < 120


@pytest.mark.parametrize("length", [12, 60, 400])
def test_signatures_estimate_jaccard(length):
    """One-permutation hashing with densification: bins agree with probability = Jaccard, also for
    texts with fewer shingles than bins (where most bins are borrowed)."""
    rng = np.random.default_rng(length)
    texts, truth = [], []
    for k in range(8):
        a = words(rng, length + 4)
        b = list(a)
        for pos in rng.choice(len(b), k * length // 20 + 1, replace=False):
            b[pos] = f"x{pos}"
        texts += [" ".join(a), " ".join(b)]
        truth.append(jaccard(texts[-2], texts[-1]))
    rows, hashes = shingle_hashes(pl.Series(texts), 5, "words")
    sig = signatures(rows, hashes, len(texts), 256)
    pairs = np.arange(len(texts)).reshape(-1, 2)
    exact = exact_jaccard(pairs, rows, hashes)
    assert np.allclose(exact, truth)
    estimate = estimated_jaccard(sig, pairs)
    assert np.abs(estimate - exact).mean() < 0.08


def test_near_dedupe_stage_on_the_demo_with_planted_copies(demo):
    unique = exact_dedupe(demo).kept
    reword = unique.head(5).with_columns(
        pl.col("chosen").list.eval(pl.struct(pl.element().struct.field("role"),
                                             pl.element().struct.field("content") + " Thanks!")),
        pl.lit(None, dtype=pl.String).alias("pair_id"))
    data = pl.concat([unique, reword], how="vertical_relaxed")
    result = near_dedupe(data, NearDedupeConfig())
    conserved(data, result, "near_dedupe")
    assert result.dropped.height >= 5
    planted = result.dropped.filter(pl.col("row_id").is_null())
    assert planted.height == 5 and set(planted["reason"]) == {"near_duplicate"}
    survivors = {d.rsplit(" ", 1)[-1] for d in planted["detail"]}
    assert survivors <= set(unique.head(5)["pair_id"])


def test_near_dedupe_on_hh_prompts_conserves_rows(hh):
    result = near_dedupe(hh, NearDedupeConfig(scope="prompt", keep="highest_margin"))
    conserved(hh, result, "near_dedupe")
    assert 0 < result.dropped.height < hh.height // 2


# ---- filters --------------------------------------------------------------------------------

def scored(demo: pl.DataFrame) -> pl.DataFrame:
    rng = np.random.default_rng(3)
    margin = np.round(rng.uniform(0, 4, demo.height), 2)
    margin[:7] = np.nan
    return demo.with_columns(pl.Series("margin", margin).fill_nan(None),
                             pl.Series("agreement", rng.choice([0.5, 0.75, 1.0], demo.height)))


def test_filter_by_margin_and_agreement(demo):
    data = scored(demo)
    result = filter_pairs(data, FilterConfig(min_margin=2, min_agreement=0.75))
    conserved(data, result, "filter")
    assert result.kept["margin"].min() >= 2 and result.kept["agreement"].min() >= 0.75
    counts = dict(result.dropped.group_by("reason").len().iter_rows())
    assert counts["no_margin"] == 7
    assert counts["margin_below_min"] == data.filter(pl.col("margin") < 2).height
    low_agreement = data.filter((pl.col("margin") >= 2) & (pl.col("agreement") < 0.75)).height
    assert counts["agreement_below_min"] == low_agreement


def test_filter_by_length_and_ratio_in_chars_and_words(hh):
    result = filter_pairs(hh, FilterConfig(min_length=20, max_length=1000, max_length_ratio=3))
    conserved(hh, result, "filter")
    texts = result.kept.select(pl.col("chosen").list.last().struct.field("content").str.len_chars().alias("c"),
                               pl.col("rejected").list.last().struct.field("content").str.len_chars().alias("r"))
    assert texts.min_horizontal().min() >= 20 and texts.max_horizontal().max() <= 1000
    assert (texts.max_horizontal() / texts.min_horizontal()).max() <= 3
    assert {"too_short", "too_long", "length_ratio"} <= set(result.dropped["reason"])
    by_words = filter_pairs(hh, FilterConfig(unit="words", min_length=5))
    conserved(hh, by_words, "filter")
    assert 0 < by_words.dropped.height < result.dropped.height


@pytest.mark.slow
def test_filter_in_tokens_uses_the_embedded_tokenizer(demo, embedded_model):
    result = filter_pairs(demo, FilterConfig(unit="tokens", max_length=300, tokenizer=str(embedded_model)))
    conserved(demo, result, "filter")
    chars = filter_pairs(demo, FilterConfig(unit="chars", max_length=300))
    assert 0 < result.dropped.height < chars.dropped.height  # a token holds several characters


# ---- length bias ----------------------------------------------------------------------------

def test_length_bias_report_on_hh_matches_direct_figures(hh):
    report = length_bias_report(hh)
    lengths = hh.select(pl.col("chosen").list.last().struct.field("content").str.len_chars().alias("c"),
                        pl.col("rejected").list.last().struct.field("content").str.len_chars().alias("r"))
    diff = lengths["c"].to_numpy().astype(float) - lengths["r"].to_numpy().astype(float)
    assert report["pairs"] == hh.height
    assert report["chosen_longer_frac"] == pytest.approx((diff > 0).mean(), abs=1e-4)
    # the symmetric (each pair in both orders) Pearson correlation, computed the long way
    x = np.concatenate([diff, -diff])
    y = np.concatenate([np.ones_like(diff), np.zeros_like(diff)])
    assert report["correlation"] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-4)
    low, high = report["logit_ci"]
    assert low < report["logit_coef"] < high < 0  # harmless-base: the chosen answer is the shorter one
    assert report["chosen_longer_frac"] < 0.5 and report["correlation"] < 0


def test_logit_coefficient_recovers_a_planted_length_effect():
    """Pairs whose preference follows P(longer wins) = sigmoid(beta * d / 100), beta = 0.8."""
    rng = np.random.default_rng(4)
    n, beta = 4000, 0.8
    a, b = rng.integers(50, 600, n), rng.integers(50, 600, n)
    first_wins = rng.random(n) < 1 / (1 + np.exp(-beta * (a - b) / 100))
    chosen = np.where(first_wins, a, b)
    rejected = np.where(first_wins, b, a)
    frame = pl.DataFrame({"c": chosen, "r": rejected}).select(
        pl.concat_list(pl.struct(pl.lit("assistant").alias("role"), pl.lit("x").repeat_by("c").list.join("")
                                 .alias("content"))).alias("chosen"),
        pl.concat_list(pl.struct(pl.lit("assistant").alias("role"), pl.lit("x").repeat_by("r").list.join("")
                                 .alias("content"))).alias("rejected"))
    report = length_bias_report(frame)
    low, high = report["logit_ci"]
    assert low < beta < high and high - low < 0.2
    assert report["chosen_longer_frac"] > 0.6 and report["correlation"] > 0.3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logit_fit_matches_statsmodels(hh, seed):
    """Our Newton fit (no 1.2 s statsmodels import per report) against statsmodels' Logit on the same data: the
    HH-RLHF length differences, and planted ones with a strong, a weak and a lopsided effect."""
    import statsmodels.api as sm

    from prefdata.curate.length_bias import SCALE, _logit

    lengths = hh.select(pl.col(c).list.last().struct.field("content").str.len_chars().cast(pl.Int64).alias(c)
                        for c in ("chosen", "rejected"))
    diffs = [(lengths["chosen"] - lengths["rejected"]).to_numpy().astype(float)]
    rng = np.random.default_rng(seed)
    for beta, shift in ((0.8, 0), (0.05, 0), (0.3, 150)):  # d: the first answer's length minus the second's
        d = rng.normal(shift, 200, 3000)
        diffs.append(np.where(rng.random(d.size) < 1 / (1 + np.exp(-beta * d / SCALE)), d, -d))
    for diff in diffs:
        ours = _logit(diff)
        x = diff[diff != 0] / SCALE
        fit = sm.Logit(np.ones_like(x), x[:, None]).fit(disp=0)
        low, high = fit.conf_int(0.05)[0]
        assert ours["logit_coef"] == pytest.approx(fit.params[0], rel=1e-7)
        assert ours["logit_ci"] == pytest.approx([low, high], rel=1e-6)
        assert ours["logit_p"] == pytest.approx(fit.pvalues[0], rel=1e-6, abs=1e-300)


def test_length_bias_report_edge_cases():
    one = pl.DataFrame({"chosen": [[{"role": "assistant", "content": "long answer"}]] * 3,
                        "rejected": [[{"role": "assistant", "content": "short"}]] * 3})
    report = length_bias_report(one)
    assert report["chosen_longer_frac"] == 1.0 and report["logit_coef"] is None and report["logit_ci"] is None
    assert "prefers the longer answer" in report["logit_note"]
    assert length_bias_report(one.head(0))["pairs"] == 0
    assert json.loads(json.dumps(report, allow_nan=False)) == report  # figures are strict JSON


def test_balance_keeps_the_largest_subset_in_the_band(hh):
    result = balance(hh, BalanceConfig(target=0.5, tolerance=0.02))
    conserved(hh, result, "length_balance")
    share = length_bias_report(result.kept)["chosen_longer_frac"]
    assert 0.48 <= share <= 0.52
    # largest: putting back any one dropped pair leaves the band
    back = pl.concat([result.kept, hh.filter(pl.col("pair_id") == result.dropped["row_id"][0])])
    assert length_bias_report(back)["chosen_longer_frac"] < 0.48
    again = balance(hh.reverse(), BalanceConfig(target=0.5, tolerance=0.02))  # content, not row order
    assert set(again.dropped["row_id"]) == set(result.dropped["row_id"])
    unchanged = balance(result.kept, BalanceConfig(target=0.5, tolerance=0.02))
    assert unchanged.dropped.height == 0


# ---- decontamination ------------------------------------------------------------------------

def test_no_texts_give_no_shingles_and_an_empty_frame_decontaminates(demo, tmp_path):
    rows, hashes = shingle_hashes(pl.Series([], dtype=pl.String))
    assert rows.size == 0 and hashes.size == 0
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"question": "How far is the moon from the earth?"}) + "\n")
    result = decontaminate(demo.clear(), DecontaminateConfig(eval_sets=[str(eval_file)]))
    assert result.kept.height == 0 and result.dropped.height == 0


def test_decontaminate_drops_prompts_sharing_13_grams_with_an_eval_set(demo, tmp_path):
    unique = exact_dedupe(demo).kept
    prompts = unique.select(pl.col("prompt").list.last().struct.field("content")).to_series()
    long = [i for i, p in enumerate(prompts) if len(p.split()) >= 30][:4]
    short = [i for i, p in enumerate(prompts) if len(p.split()) < 13][:2]
    assert len(long) == 4 and len(short) == 2
    rows = [{"question": "Context: " + " ".join(prompts[i].split()[5:25]) + " and more."} for i in long]
    rows += [{"question": prompts[i].upper()} for i in short]  # short prompts match only whole
    rows += [{"question": "An unrelated question about the boiling point of water at altitude."}]
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = decontaminate(unique, DecontaminateConfig(eval_sets=[str(eval_file)]))
    conserved(unique, result, "decontaminate")
    hit = set(unique[long + short]["pair_id"])
    assert set(result.dropped["row_id"]) == hit
    assert all(str(eval_file) in d for d in result.dropped["detail"])
    flagged = decontaminate(unique, DecontaminateConfig(eval_sets=[str(eval_file)], action="flag"))
    assert flagged.dropped.height == 0 and flagged.kept["contaminated"].sum() == len(hit)


# ---- split ----------------------------------------------------------------------------------

def test_split_is_grouped_deterministic_and_stratified(hh):
    parts = train_test(hh, SplitConfig(test_size=0.2))
    assert parts["train"].height + parts["test"].height == hh.height
    assert not set(parts["train"]["prompt_id"]) & set(parts["test"]["prompt_id"])
    groups = hh["prompt_id"].n_unique()
    assert parts["test"]["prompt_id"].n_unique() == round(groups * 0.2)
    shuffled = hh.sample(fraction=1.0, shuffle=True, seed=1)
    again = train_test(shuffled, SplitConfig(test_size=0.2))
    assert set(again["test"]["pair_id"]) == set(parts["test"]["pair_id"])  # content decides, not order
    other = train_test(hh, SplitConfig(test_size=0.2, seed=7))
    assert set(other["test"]["pair_id"]) != set(parts["test"]["pair_id"])
    strata = hh.with_columns((pl.col("chosen").list.len() > 1).alias("multi"),
                             (pl.col("prompt_id").str.slice(0, 1) < "8").alias("half"))
    split = strata.with_columns(assign_split(strata, SplitConfig(test_size=0.25, stratify="half")))
    per = split.group_by("half").agg((pl.col("split") == "test").mean().alias("share"))
    assert per["share"].to_list() == pytest.approx([0.25, 0.25], abs=0.01)


# ---- steps in any order, as a spec lists them ------------------------------------------------

def test_steps_run_in_any_order_from_configs(hh):
    configs = [NearDedupeConfig(scope="prompt"), FilterConfig(min_length=10), DedupeConfig(),
               BalanceConfig(tolerance=0.03), SplitConfig(test_size=0.1)]
    data, dropped = hh, []
    for config in configs:
        result = run_step(data, config)
        assert result.kept.height + result.dropped.height == data.height
        data, dropped = result.kept, dropped + [result.dropped]
    assert data.height + sum(d.height for d in dropped) == hh.height
    assert set(data["split"]) == {"train", "test"}
    assert set(STEPS) >= {"dedupe", "near_dedupe", "filter", "length_balance", "split"}
