"""Training pre-flight with the real SmolLM2-135M-Instruct tokenizer and chat template."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import DPO_DEMO, KTO_DEMO, run_cli
from prefdata.io import read_dataset
from prefdata.validators.api import validate_frame
from prefdata.tokens import load_tokenizer

PREFLIGHT = ("chat_template", "special_tokens", "prompt_prefix", "token_lengths", "truncation")
# A reasoning-style template: the generation prompt opens a <think> block that rendered history lacks,
# so the rendered prompt is not a prefix of prompt + completion.
THINK = "<|im_start|>assistant\n<think>\n"


@pytest.fixture(scope="module")
def model_dir(embedded_model):
    return embedded_model


@pytest.fixture()
def tok(model_dir):
    return load_tokenizer(model_dir)


@pytest.fixture(scope="module")
def dpo():
    return read_dataset(DPO_DEMO).frame.head(60)


def preflight(frame, tokenizer, kind="pairwise", **kwargs):
    report = validate_frame(frame, kind, tokenizer=tokenizer, only=(), **kwargs)
    assert [c.name for c in report.checks] == list(PREFLIGHT)
    return {c.name: c for c in report.checks}


def _lengths(tok, frame, column):
    """Independent count: the template's own tokenization, prompt + completion."""
    return [len(tok.apply_chat_template(p + c, tokenize=True, return_dict=False))
            for p, c in zip(frame["prompt"].to_list(), frame[column].to_list())]


def test_lengths_and_template_of_real_pairs(tok, dpo, model_dir):
    checks = preflight(dpo, model_dir, max_length=100_000)
    assert all(checks[n].passed for n in PREFLIGHT)
    longest = np.maximum(_lengths(tok, dpo, "chosen"), _lengths(tok, dpo, "rejected"))
    figures = checks["token_lengths"].figures["prompt_completion"]
    assert figures["max"] == longest.max()
    assert figures["p95"] == sorted(longest)[round(0.95 * (len(longest) - 1))] == checks["token_lengths"].value
    assert checks["special_tokens"].value == {"eos": "<|im_end|>", "pad": "<|im_end|>"}


def test_max_length_below_p95_fails_and_counts_truncation(tok, dpo, model_dir):
    longest = np.maximum(_lengths(tok, dpo, "chosen"), _lengths(tok, dpo, "rejected"))
    limit = int(np.median(longest))
    checks = preflight(dpo, model_dir, max_length=limit)
    assert not checks["token_lengths"].passed and checks["token_lengths"].severity == "error"
    assert checks["truncation"].value == round(float((longest > limit).mean()), 4)
    assert not checks["truncation"].passed and checks["truncation"].examples[0]["tokens"] > limit


def test_prompt_not_a_prefix_of_prompt_and_completion(tok, dpo):
    tok.chat_template = tok.chat_template.replace("{{ '<|im_start|>assistant\n' }}", "{{ '" + THINK + "' }}")
    checks = preflight(dpo.head(5), tok, max_length=100_000)
    assert not checks["prompt_prefix"].passed and checks["prompt_prefix"].value == 10  # both answers, 5 rows
    assert "<think>" in checks["prompt_prefix"].examples[0]["prompt_rendered"]


def test_a_base_model_without_chat_template_fails(tok, dpo):
    tok.chat_template = None
    checks = preflight(dpo.head(5), tok)
    assert not checks["chat_template"].passed
    assert all(checks[n].skipped for n in ("prompt_prefix", "token_lengths", "truncation"))


def test_missing_pad_token_fails(tok, dpo):
    tok.pad_token = None
    checks = preflight(dpo.head(5), tok)
    assert not checks["special_tokens"].passed and "pad" in checks["special_tokens"].message


def test_unpaired_completions(tok, model_dir):
    frame = read_dataset(KTO_DEMO).frame.head(40)
    checks = preflight(frame, model_dir, kind="unpaired", max_length=100_000)
    assert checks["token_lengths"].figures["prompt_completion"]["max"] == max(_lengths(tok, frame, "completion"))


@pytest.mark.slow  # two CLI runs that load transformers and render 300 rows each: about 25 s here
def test_cli_exit_code_follows_the_preflight(model_dir):
    short = run_cli("validate", KTO_DEMO, "--tokenizer", model_dir, "--no-stamp", "--json")
    long = run_cli("validate", KTO_DEMO, "--tokenizer", model_dir, "--max-length", "8192", "--no-stamp", "--json")
    for done in (short, long):
        found = json.loads(done.stdout)
        errors = [c for c in found["checks"] if c["severity"] == "error" and not c["passed"]]
        assert done.returncode == (1 if errors else 0)
    assert short.returncode == 1 and [c["name"] for c in json.loads(short.stdout)["checks"]
                                      if c["severity"] == "error" and not c["passed"]] == ["token_lengths"]
    assert long.returncode == 0


def test_bad_tokenizer_path_is_bad_input(tmp_path):
    done = run_cli("validate", KTO_DEMO, "--tokenizer", tmp_path / "nothing", "--no-stamp")
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "cannot load a tokenizer" in done.stderr
