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
    (GOOD.replace("  n: 3", "  n: 3\n  temprature: 0.5"), ":6: generate.temprature: Extra inputs"),
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
