"""vLLM for real, on this CPU: prefdata's VLLMBackend and VLLMRewardBackend on the embedded SmolLM2 folder,
and a whole `prefdata build` whose generator and judges are vLLM.

It runs only inside .venv-vllm (vLLM's CPU build, `bash ci/vllm_env.sh`), through `bash ci/vllm_check.sh`:
vLLM pins its own torch and transformers, so it cannot live in the project's venv, and each engine start
takes a minute or more here, so CI does not run it (README: "vLLM on a CPU"). The engine starts once for
the generation tests (module fixture), once for the reward model, and once in the build's own process.
"""

import importlib.util
import json
import os
import shutil
import time

import polars as pl
import pytest
import yaml

from conftest import ROOT, run_cli

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vLLM is not installed here: run `bash ci/vllm_check.sh` (it makes .venv-vllm with "
                              "vLLM's CPU build and runs this file there)"),
]
# On a CPU: no compilation (minutes), a short context and 1 GiB of KV cache (vLLM's CPU default is larger)
ENGINE = {"enforce_eager": True, "max_model_len": 1024, "seed": 0}
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
USER = [{"role": "user", "content": "Name a colour and say why you like it."}]


@pytest.fixture(scope="module")
def backend(embedded_model):
    from prefdata.backends import ChatRequest, SamplingParams
    from prefdata.backends.vllm_backend import VLLMBackend

    vllm = VLLMBackend(str(embedded_model), engine_args=ENGINE)
    start = time.perf_counter()
    vllm.generate([ChatRequest.of(USER, params=SamplingParams(max_tokens=1))])  # the engine starts here
    print(f"\nvLLM engine start + first request: {time.perf_counter() - start:.1f} s")
    return vllm


def test_samples_differ_and_the_seed_decides(backend):
    """The sample index picks the seed: samples differ, and the same request twice in one batch starts the
    same. Not more: vLLM is not batch-invariant on this CPU (bfloat16), and twins with the same seed were
    seen to diverge after three or four tokens, in one batch or across batches. The request cache keeps a
    build's answers fixed once made."""
    from prefdata.backends import ChatRequest, SamplingParams

    params = SamplingParams(temperature=1.0, max_tokens=16, seed=3, logprobs=1)
    requests = [ChatRequest.of(USER, params=params, sample=s) for s in (0, 1, 2, 3, 0)]
    first = backend.generate(requests)
    assert all(a.error is None and a.finish_reason in ("stop", "length") for a in first), first
    assert len({a.text for a in first[:4]}) >= 3, [a.text for a in first]
    assert first[4].logprobs[0][0] == first[0].logprobs[0][0], (first[0].text, first[4].text)
    assert all(a.tokens_in > 10 and 0 < a.tokens_out <= 16 for a in first)
    assert any(a.finish_reason == "length" and a.tokens_out == 16 for a in first)


def test_prefill_is_continued_not_restarted(backend):
    from prefdata.backends import ChatRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=8)
    prefill = '{"winner": "'
    plain, prefilled = backend.generate([ChatRequest.of(USER, params=params),
                                         ChatRequest.of(USER, params=params, prefill=prefill)])
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(backend.model)
    # the prompt is the plain one (generation prompt included) plus the prefill's tokens, no end of turn
    assert prefilled.tokens_in == plain.tokens_in + len(tokenizer(prefill, add_special_tokens=False).input_ids)
    assert prefilled.error is None and prefilled.text and not prefilled.text.startswith(prefill)


def test_judge_verdicts_match_the_schema(backend):
    import jsonschema

    from prefdata.backends import ChatRequest, SamplingParams
    from prefdata.judge import prompts

    messages = prompts.pairwise(USER, "Blue, because it is calm.", "no", None, backend.special_tokens())
    request = ChatRequest.of(messages, params=SamplingParams(temperature=0.0, max_tokens=120),
                             **prompts.shape(backend.name, prompts.VERDICT_SCHEMA, prompts.PAIRWISE_PREFILL))
    assert request.json_schema is not None  # vLLM gets the schema, not the prefill
    (answer,) = backend.generate([request])
    assert answer.error is None, answer.error
    jsonschema.validate(json.loads(answer.text), prompts.VERDICT_SCHEMA)


def test_logprobs_per_token_join_to_the_answer_and_survive_the_cache(backend, tmp_path):
    from prefdata.backends import ChatRequest, RequestCache, SamplingParams, run_requests

    params = SamplingParams(temperature=0.0, max_tokens=24, logprobs=3)
    requests = [ChatRequest.of(USER, params=params), ChatRequest.of([{"role": "user", "content": "Hi!"}],
                                                                     params=params)]
    cache = RequestCache(tmp_path / "cache.sqlite")
    answers = run_requests(backend, requests, cache)
    for answer in answers:
        assert answer.error is None and len(answer.logprobs) == answer.tokens_out
        assert "".join(text for text, _, _ in answer.logprobs) == answer.text
        for _, logprob, alternatives in answer.logprobs:
            assert logprob <= 0 and 1 <= len(alternatives) <= 3 and all(v <= 0 for v in alternatives.values())
            assert logprob >= max(alternatives.values()) - 1e-3  # greedy: the chosen token is the likeliest
    assert any(a.finish_reason == "stop" for a in answers)  # the end-of-turn token is in the count, as ""
    plain = backend.generate([ChatRequest.of(USER, params=SamplingParams(temperature=0.0, max_tokens=24))])
    assert plain[0].logprobs is None and plain[0].text == answers[0].text
    assert [a.logprobs for a in run_requests(backend, requests, cache)] == [a.logprobs for a in answers]
    assert cache.hits == 2


def test_logprob_texts_join_across_byte_pieces_and_the_end_of_turn(embedded_model):
    """vLLM's per-token texts (its own detokenizer, no engine needed) spell an emoji's byte tokens as two
    U+FFFD and the end-of-turn token as itself; ours join to the answer vLLM returns (special tokens skipped)."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer
    from vllm.logprobs import Logprob
    from vllm.tokenizers.detokenizer_utils import convert_ids_list_to_tokens

    from prefdata.backends.vllm_backend import token_logprobs

    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    for text in ("Blue is calm — café 😀 ok.", "plain text"):
        ids = tokenizer(text, add_special_tokens=False).input_ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
        spelled = convert_ids_list_to_tokens(tokenizer, ids)
        output = SimpleNamespace(token_ids=ids, text=tokenizer.decode(ids, skip_special_tokens=True),
                                 logprobs=[{i: Logprob(-0.5, 1, s)} for i, s in zip(ids, spelled)])
        rows = token_logprobs(output, 1, tokenizer)
        assert "".join(row[0] for row in rows) == output.text == text and rows[-1][0] == ""
        assert all(row[1] == -0.5 and len(row[2]) == 1 for row in rows)


def test_a_prompt_too_long_fails_its_row_only(backend):
    from prefdata.backends import ChatRequest, SamplingParams

    params = SamplingParams(temperature=0.0, max_tokens=8)
    long = [{"role": "user", "content": "word " * 3000}]
    bad, good = backend.generate([ChatRequest.of(long, params=params), ChatRequest.of(USER, params=params)])
    assert bad.text is None and bad.reason == "backend_error" and "1024" in bad.error, bad.error
    assert good.error is None and good.text


@pytest.fixture(scope="module")
def reward_model(embedded_model, tmp_path_factory):
    """A one-label sequence-classification model made from SmolLM2 (its head is random: consistency only)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("reward")
    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    model = AutoModelForSequenceClassification.from_pretrained(embedded_model, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else \
        tokenizer.eos_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reward_model_scores_match_transformers(reward_model):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from prefdata.backends import ChatRequest
    from prefdata.backends.reward_vllm import VLLMRewardBackend

    answers = ["Blue, because it is calm.", "I do not know.", "Red! It is the colour of energy and warmth.",
               "Green " * 40]
    requests = [ChatRequest.of(USER + [{"role": "assistant", "content": a}]) for a in answers]
    too_long = [{"role": "user", "content": "word " * 3000}, {"role": "assistant", "content": "x"}]
    requests.append(ChatRequest.of(too_long))
    backend = VLLMRewardBackend(str(reward_model), engine_args={**ENGINE, "dtype": "float32"})
    assert backend.model.startswith(reward_model.name + "@")  # the weights' hash, for the cache
    got = backend.generate(requests)
    assert got[-1].text is None and got[-1].reason == "backend_error"  # too long: its row fails, not the batch
    scores = [float(a.text) for a in got[:-1]]
    tokenizer = AutoTokenizer.from_pretrained(reward_model)
    model = AutoModelForSequenceClassification.from_pretrained(reward_model, dtype=torch.float32).eval()
    expected = []
    with torch.no_grad():
        for request in requests[:-1]:
            ids = tokenizer.apply_chat_template(request.as_messages(), tokenize=True, return_dict=True)["input_ids"]
            expected.append(model(torch.tensor([ids])).logits[0, 0].item())
    assert all(a.tokens_in > 10 for a in got[:-1])
    assert scores == pytest.approx(expected, rel=1e-2, abs=1e-2), (scores, expected)
    assert sorted(range(4), key=scores.__getitem__) == sorted(range(4), key=expected.__getitem__)


def test_build_with_vllm_generator_and_judges(embedded_model, tmp_path):
    """`prefdata build` in its own process (vLLM spawns its engine from the CLI), 8 prompts x 3 answers,
    a pairwise judge (both orders) and a rubric judge, all on one vLLM engine with structured output."""
    quickstart = ROOT / "examples" / "quickstart"
    for name in ("prompts.jsonl", "gold.jsonl"):
        shutil.copy(quickstart / name, tmp_path / name)
    spec = yaml.safe_load((quickstart / "spec.yaml").read_text())
    vllm = {"kind": "vllm", "model": str(embedded_model), "batch_size": 64, "engine_args": ENGINE}
    spec["sources"][0]["limit"] = 8
    spec["generate"].update(backend=vllm, n=3, max_tokens=96)
    for judge in spec["judges"]:
        judge.update(backend=vllm, max_tokens=120)
    spec["cache"] = "cache.sqlite"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    start = time.perf_counter()
    done = run_cli("build", tmp_path / "spec.yaml", "--output", tmp_path / "out")
    print(f"\nprefdata build on vLLM: {time.perf_counter() - start:.1f} s, rc {done.returncode}\n"
          + done.stderr[-1500:])
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: validation failed, honestly (the card says why)
    out = tmp_path / "out"
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["sources"]["kept"] == 8 and counts["generate"]["in"] == 24
    for stage, c in counts.items():
        assert c["in"] == c["kept"] + sum(c["dropped"].values()), stage
    candidates = pl.read_parquet(out / "candidates.parquet")
    assert candidates.height == 24 and candidates["model"].unique().to_list() == [str(embedded_model)]
    assert candidates["response"].n_unique() > 16  # three different samples per prompt
    judgments = pl.read_parquet(out / "judgments.parquet")
    # 8 x 3 pairs in both orders and a rubric score per answer (48 + 24), and the gold items' judgments
    assert counts["judge"]["judgments"] == 72 and judgments.height >= 72
    assert judgments["error"].drop_nulls().str.starts_with("backend_error").sum() == 0
    # vLLM decodes under the bounded schema (integer scores within the scale, a rationale that fits max_tokens):
    # every verdict reads; the one thing left is a winner its own scores contradict, which is counted as such.
    # (With the plain schema, scores of -1 or 0.5 and cut rationales left about 40% unreadable.)
    unread = judgments.filter(~pl.col("parse_ok"))["error"].to_list()
    assert all(e.startswith("conflicting_verdicts") for e in unread), unread
    assert judgments["parse_ok"].mean() > 0.9, unread
    pairwise = judgments.filter(pl.col("parse_ok") & pl.col("order").is_not_null())
    assert pairwise["confidence"].null_count() == 0  # vLLM gives token probabilities
    print(json.dumps({"counts": counts, "validation_passed": manifest["validation"]["passed"],
                      "judge_parse_ok": judgments["parse_ok"].mean()}))
