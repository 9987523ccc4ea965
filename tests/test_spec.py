"""Spec errors name the YAML path and line."""

import pytest

from prefdata.errors import PrefdataError
from prefdata.spec import load_spec

GOOD = """name: demo
sources:
  - path: prompts.jsonl
generate:
  n: 3
  max_tokens: 64
"""


def write(tmp_path, text):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_good_spec_resolves_paths_relative_to_the_file(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec.generate.n == 3 and spec.judges[0].backend.kind == "embedded" and spec.panel.method == "majority"
    assert spec.resolve(spec.sources[0].path) == tmp_path / "prompts.jsonl"


@pytest.mark.parametrize("text, where", [
    (GOOD.replace("  n: 3", "  n: 3\n  temprature: 0.5"), ":6: generate.temprature: unknown key 'temprature' (did you mean 'temperatures'?)"),
    (GOOD.replace("n: 3", "n: lots"), ":5: generate.n: Input should be a valid integer"),
    (GOOD.replace("n: 3", "n: 1"), ":5: generate.n: Input should be greater than or equal to 2"),
    (GOOD.replace("name: demo\n", ""), ":1: name: Field required"),
    (GOOD + "judges:\n  - backend: {kind: transformers}\n", ":8: judges.0.backend: Value error"),
    (GOOD + "judges:\n  - {kind: pairwise}\n  - {kind: pairwise}\n", "judge names must differ"),
    (GOOD + "panel: {method: vote}\n", ":7: panel.method: Input should be"),
    (GOOD + "judges:\n  - prompt: 'Compare {answer_a} and {answer_b}. Reply {\"winner\": \"A\"}'\n",
     ':8: judges.0: Value error, prompt: unknown field {"winner"} for a pairwise judge'),
    (GOOD + "judges:\n  - {kind: pointwise, prompt: 'Rate {answer_a}'}\n", "unknown field {answer_a} for a pointwise"),
])
def test_bad_spec_names_path_and_line(tmp_path, text, where):
    with pytest.raises(PrefdataError) as info:
        load_spec(write(tmp_path, text))
    assert where in str(info.value)


def test_single_judge_shorthand(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + "judge:\n  kind: pointwise\n  rubric: {aspects: [accuracy], scale: 5}\n"))
    assert [j.kind for j in spec.judges] == ["pointwise"] and spec.judges[0].rubric.scale == 5


def test_invalid_yaml(tmp_path):
    with pytest.raises(PrefdataError, match=r"spec.yaml:\d+: invalid YAML"):
        load_spec(write(tmp_path, "name: [unclosed\n"))


def test_environment_interpolation_and_redaction(tmp_path, monkeypatch):
    from conftest import SHARED
    from prefdata.build import build

    monkeypatch.setenv("PD_SHARED", str(SHARED))
    path = write(tmp_path, "name: env-demo\nsources:\n  - path: ${PD_SHARED}/llamafactory/dpo_en_demo.json\n"
                           "generate: null\ncurate: [dedupe]\ndescription: ${PD_NOTE:-no note}\n")
    spec = load_spec(path)
    assert spec.sources[0].path == f"{SHARED}/llamafactory/dpo_en_demo.json" and spec.description == "no note"
    result = build(spec, output=tmp_path / "out", quiet=True)
    manifest = (tmp_path / "out" / "manifest.json").read_text()
    assert "${PD_SHARED}/llamafactory" in manifest and str(SHARED) not in manifest
    assert result.pairs == 295  # the demo's 300 pairs less its 5 exact repeats


def test_missing_environment_variable_names_the_line(tmp_path, monkeypatch):
    monkeypatch.delenv("PD_NOT_SET", raising=False)
    with pytest.raises(PrefdataError, match=r"spec.yaml:3: environment variable PD_NOT_SET is not set"):
        load_spec(write(tmp_path, "name: x\nsources:\n  - path: ${PD_NOT_SET}/p.jsonl\n"))


def test_json_schema_for_editors():
    from prefdata.spec import json_schema

    schema = json_schema()
    assert {"sources", "generate", "judges", "panel", "curate"} <= set(schema["properties"])
    assert "base_dir" not in schema["properties"]


# ---- hostile specs (issue 12 §6): refused when read, one line naming file:line and the key ----

@pytest.mark.parametrize("extra, where", [
    ("generate: {temperatures: [.nan]}", ":7: generate.temperatures.0: Input should be a finite number"),
    ("generate: {temperatures: [0.7, -0.5]}", ":7: generate.temperatures.1: Input should be greater than or equal to 0"),
    ("generate: {temperatures: [9]}", ":7: generate.temperatures.0: Input should be less than or equal to 2"),
    ("generate: {n: 1.0e+15}", ":7: generate.n: Input should be less than or equal to 64"),
    ("generate: {n: 1000000}", ":7: generate.n: Input should be less than or equal to 64"),
    ("generate: {top_p: .inf}", ":7: generate.top_p: Input should be a finite number"),
    ("generate: {max_tokens: 1000000000}", ":7: generate.max_tokens: Input should be less than or equal to 131072"),
    ("generate: {seed: -1}", ":7: generate.seed: Input should be greater than or equal to 0"),
    ("generate: {backend: {kind: openai, model: m, rpm: 0.0001}}",
     ":7: generate.backend.rpm: Input should be greater than or equal to 1"),
    ("generate: {backend: {kind: openai, model: m, tpm: 10}}", "generate.backend.tpm: Input should be greater than"),
    ("generate: {backend: {kind: openai, model: m, timeout_s: 0.000001}}", "generate.backend.timeout_s: Input should"),
    ("generate: {backend: {kind: openai, model: m, concurrency: 100000}}", "generate.backend.concurrency: Input"),
    ("generate: {backend: {batch_size: 10000000}}", "generate.backend.batch_size: Input should be less than"),
    ("generate: {backend: {kind: openai, model: m, max_attempts: 1000}}", "generate.backend.max_attempts: Input"),
    ("prices: {m: {input: .inf, output: 1}}", ":7: prices.m.input: Input should be a finite number"),
    ("max_cost: .nan", ":7: max_cost: Input should be a finite number"),
    ("max_cost: -1", ":7: max_cost: Input should be greater than 0"),
    ("generate: {backend: {kind: openai, model: m, base_url: '127.0.0.1:8000/v1'}}",
     ":7: generate.backend.base_url: Value error, '127.0.0.1:8000/v1' is not an http:// or https:// URL with a host"),
    ("generate: {backend: {kind: openai, model: m, base_url: 'http://u:secret@:80/v1'}}",
     "Value error, 'http://***@:80/v1' is not an http:// or https:// URL with a host"),
])
def test_numbers_are_finite_and_bounded(tmp_path, extra, where):
    with pytest.raises(PrefdataError) as info:
        load_spec(write(tmp_path, "name: demo\nsources:\n  - path: prompts.jsonl\njudge: {}\ncurate: []\n\n" + extra))
    assert where in str(info.value)


@pytest.mark.parametrize("template, message", [
    ("{answer_a!z} {answer_b}", "prompt: {answer_a!z}: conversions (!r) and format specs (:d) are not allowed"),
    ("{answer_a!r} {answer_b}", "prompt: {answer_a!r}: conversions"),
    ("{answer_a:d} {answer_b}", "prompt: {answer_a:d}: conversions"),
    ("{answer_a:>900000000} {answer_b}", "prompt: {answer_a:>900000000}: conversions"),
    ("{answer_a:{nonce}} {answer_b}", "prompt: {answer_a:{nonce}}: conversions"),
    ("{answer_a.__class__} {answer_b}", "prompt: unknown field {answer_a.__class__} for a pairwise judge"),
    ("{answer_a[0]} {answer_b}", "prompt: unknown field {answer_a[0]}"),
    ("{} {answer_b}", "prompt: unknown field {} for a pairwise judge"),
    ("Which is better? {answer_a}", "prompt: a pairwise judge's template must show {answer_b}"),
    ("{answer_a} {answer_b", "prompt: expected '}' before end of string"),
])
def test_judge_templates_that_format_would_fail_on_are_refused(tmp_path, template, message):
    from prefdata.judge.prompts import pairwise

    text = GOOD + "judges:\n  - prompt: " + repr(template).replace("\\'", "''") + "\n"
    with pytest.raises(PrefdataError) as info:
        load_spec(write(tmp_path, text))
    assert ":8: judges.0: Value error, " + message in str(info.value)
    fine = load_spec(write(tmp_path, GOOD + "judges:\n  - prompt: 'A: {answer_a} B: {answer_b} {{\"json\": 1}}'\n"))
    assert "B: b" in pairwise([{"role": "user", "content": "q"}], "a", "b", fine.judges[0].prompt)[1]["content"]


@pytest.mark.parametrize("extra, where", [
    # (the curation and validation models may refuse these themselves: the line and the words are what count)
    ("curate:\n  - {step: filter, min_margin: .nan}", (":7: curate.0.", "min_margin", "finite number")),
    ("validation: {min_pairs: 10, min_margin: .inf}", (":7: validation.min_margin: ", "finite number")),
    ("generate:\n  backend: {kind: vllm, model: m, engine_args: {gpu_memory_utilization: -.inf}}",
     (":8: generate.backend.engine_args.gpu_memory_utilization: -inf is not a finite number",)),
])
def test_no_key_takes_nan_or_infinity(tmp_path, extra, where):
    with pytest.raises(PrefdataError) as info:
        load_spec(write(tmp_path, "name: demo\nsources:\n  - path: prompts.jsonl\njudge: {}\ncurate: []\n\n"
                        .replace("curate: []\n", "" if extra.startswith("curate") else "curate: []\n") + extra))
    assert all(part in str(info.value) for part in where), str(info.value)


def test_duplicate_keys_are_an_error_not_the_last_one_winning(tmp_path):
    with pytest.raises(PrefdataError, match=r"spec.yaml:7: duplicate key 'n' \(first on line 5"):
        load_spec(write(tmp_path, GOOD + "  n: 4\n"))


def test_comments_are_not_interpolated_and_values_cannot_rewrite_the_spec(tmp_path, monkeypatch):
    monkeypatch.delenv("PD_NOT_SET", raising=False)
    monkeypatch.setenv("PD_NAME", "demo\nmax_cost: 0.01\nprices: {fake: {input: 0, output: 0}}")
    spec = load_spec(write(tmp_path, "# set ${PD_NOT_SET} before a real run\n" + GOOD.replace("demo", "${PD_NAME}")))
    assert spec.name == "demo\nmax_cost: 0.01\nprices: {fake: {input: 0, output: 0}}"  # a string, nothing more
    assert spec.max_cost is None and spec.prices == {}
    assert spec.public()["name"] == "${PD_NAME}" and spec.shown(spec.name) == "${PD_NAME}"


@pytest.mark.parametrize("text, message", [
    (GOOD.replace("  n: 3", "  temperature: 0.5"), ":5: generate.temperature: unknown key 'temperature' "
                                                     "(did you mean 'temperatures'?)"),
    (GOOD + "judges:\n  - {kind: pairwise, max_token: 64}\n", "judges.0.max_token: unknown key 'max_token' "
                                                              "(did you mean 'max_tokens'?)"),
    (GOOD.replace("path: prompts.jsonl", "{path: prompts.jsonl, fromat: sharegpt}"),
     ":3: sources.0.fromat: unknown key 'fromat' (did you mean 'format'?)"),
    (GOOD + "curate:\n  - {step: filter, min_margn: 2}\n", "curate.0.filter.min_margn: unknown key 'min_margn' "
                                                           "(did you mean 'min_margin'?)"),
    (GOOD + "prices: {m: {inptu: 1, output: 2}}\n", "prices.m.inptu: unknown key 'inptu' (did you mean 'input'?)"),
    (GOOD + "judgs: []\n", ":7: judgs: unknown key 'judgs' (did you mean 'judges'?)"),
    (GOOD + "zzz: 1\n", ":7: zzz: unknown key 'zzz' (known: cache, curate, description, engine, generate, gold, judge, "
                        "judges, max_cost, max_requests, name, output, panel, prices, sources, validation)"),
])
def test_unknown_keys_suggest_the_near_one(tmp_path, text, message):
    with pytest.raises(PrefdataError) as info:
        load_spec(write(tmp_path, text))
    assert message in str(info.value)


def test_one_prompts_requests_are_bounded_when_the_spec_is_read(tmp_path):
    with pytest.raises(PrefdataError, match=r"spec.yaml:1: \(top\): Value error, one prompt would take 1,600 "
                                            r"requests .* more than max_requests \(1,000\)"):
        load_spec(write(tmp_path, GOOD.replace("n: 3", "n: 40") + "max_requests: 1000\n"))
    assert load_spec(write(tmp_path, GOOD)).requests_per_prompt() == 3 + 3 * 2  # 3 candidates, 3 pairs x 2 orders
