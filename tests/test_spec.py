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
