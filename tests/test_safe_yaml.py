"""The one YAML loader for user files (prefdata.safe_yaml): bounded size, depth and alias expansion,
duplicate keys refused, `${NAME}` interpolated into parsed strings only; used by specs, `align train
CONFIG.yaml` and `align eval --judges`. Every error is one PrefdataError naming file:line."""

import pytest

from prefdata.errors import PrefdataError
from prefdata.safe_yaml import MAX_BYTES, MAX_DEPTH, MAX_VALUES, load, loads

# nine anchors of nine aliases each: 9^9 (387 million) strings once expanded
LAUGHS = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))


def error(text, **kw) -> str:
    with pytest.raises(PrefdataError) as info:
        loads(text, "f.yaml", **kw)
    return str(info.value)


def test_deep_nesting_is_refused_at_its_line_without_recursion():
    assert error("name: x\nd: " + "[" * 3000 + "]" * 3000 + "\n") == f"f.yaml:2: nested deeper than {MAX_DEPTH} levels"
    ok = loads("d: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1), "f.yaml").data["d"]
    depth = 0
    while isinstance(ok, list):
        ok, depth = ok[0], depth + 1
    assert (ok, depth) == (1, MAX_DEPTH - 1)


def test_billion_laughs_fails_at_the_alias_that_passes_the_bound():
    message = error("engine_args:\n" + "".join("  " + line + "\n" for line in LAUGHS.splitlines()))
    assert message.startswith(f"f.yaml:7: more than {MAX_VALUES:,} values once alias *a4 is expanded")


def test_aliases_that_repeat_a_part_still_work():
    data = loads("base: &b {kind: openai, model: m}\njudges:\n  - backend: *b\n  - backend:\n      <<: *b\n"
                 "      model: other\n", "f.yaml").data
    assert data["judges"][0]["backend"] == {"kind": "openai", "model": "m"}
    assert data["judges"][1]["backend"] == {"kind": "openai", "model": "other"}  # merge keys: explicit wins


def test_an_alias_inside_its_own_anchor_is_refused():
    assert error("a: 1\nb: &c {self: *c}\n") == "f.yaml:2: alias *c is inside the value it names (a cycle)"
    assert error("b: &c\n  - [1, *c]\n").startswith("f.yaml:2: alias *c is inside")


def test_an_alias_cannot_nest_past_the_depth_bound():
    deep = "[" * 40 + "1" + "]" * 40
    assert "alias *d nests deeper than" in error(f"a: &d {deep}\nb: {'[' * 30}*d{']' * 30}\n")


@pytest.mark.parametrize("text, message", [
    ("name: a\nname: b\n", "f.yaml:2: duplicate key 'name' (first on line 1; the last would silently win)"),
    ("g: {n: 2, n: 3}\n", "f.yaml:1: duplicate key 'n' (first on line 1"),
    ("d: 2024-13-45\n", "f.yaml:1: invalid YAML (month must be in 1..12)"),
    ("n: " + "9" * 5000 + "\n", "f.yaml:1: invalid YAML (Exceeds the limit (4300 digits)"),
    ("a: !!python/object/apply:os.system [echo]\n", "f.yaml:1: invalid YAML (could not determine a constructor"),
    ("a: [1\n", "f.yaml:2: invalid YAML (while parsing a flow sequence, expected ',' or ']'"),
    ("a: *nowhere\n", "f.yaml:1: invalid YAML (found undefined alias"),
    ("--- 1\n--- 2\n", "f.yaml:2: invalid YAML (expected a single document in the stream, but found another"),
    ("? [1]\n: 2\n", "f.yaml:1: invalid YAML (while constructing a mapping, found unhashable key"),
])
def test_bad_yaml_is_one_line_naming_the_line(text, message):
    found = error(text)
    assert found.startswith(message) and "\n" not in found


def test_size_is_bounded_before_parsing(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("a: " + "x" * MAX_BYTES + "\n")
    with pytest.raises(PrefdataError, match=r"big.yaml: 1,048,580 bytes, more than a spec may hold"):
        load(big, what="spec")


def test_interpolation_is_on_parsed_strings_not_the_text(monkeypatch):
    monkeypatch.delenv("PD_UNSET", raising=False)
    monkeypatch.setenv("PD_INJECT", "x\nmax_cost: 1000000\nprices: {}")
    monkeypatch.setenv("PD_KEY", "api_key")
    loaded = loads("# a note about ${PD_UNSET}\nname: ${PD_INJECT}\n${PD_KEY}: 1\nn: '${PD_UNSET:-2}'\n", "f.yaml",
                   interpolate=True)
    assert loaded.data == {"name": "x\nmax_cost: 1000000\nprices: {}", "${PD_KEY}": 1, "n": "2"}
    assert loaded.env == {"PD_INJECT": "x\nmax_cost: 1000000\nprices: {}"}  # kept, to be redacted
    assert error("a: 1\nb:\n  - ${PD_UNSET}\n", interpolate=True).startswith(
        "f.yaml:3: environment variable PD_UNSET is not set")
    assert loads("a: ${PD_UNSET}\n", "f.yaml").data == {"a": "${PD_UNSET}"}  # only where asked for


def test_align_train_config_uses_the_loader(tmp_path):
    from prefdata.align.config import load_config

    path = tmp_path / "train.yaml"
    given = {"model": "m", "data": "d", "output": "o"}
    path.write_text("method: dpo\nbeta: 0.1\nbeta: 0.3\n")
    with pytest.raises(PrefdataError, match=r"train.yaml:3: duplicate key 'beta'"):
        load_config(path, given)
    path.write_text("method: dpo\ntrl: " + "{a: " * 100 + "1" + "}" * 100 + "\n")
    with pytest.raises(PrefdataError, match=r"train.yaml:2: nested deeper than 64 levels"):
        load_config(path, given)
    path.write_text("method: dpo\nprofile: cpu\n\nbeta: lots\n")
    with pytest.raises(PrefdataError, match=r"train.yaml:4: beta: Input should be a valid number"):
        load_config(path, given)


def test_align_eval_judges_file_uses_the_loader(tmp_path):
    from prefdata.align.cli import _judges

    path = tmp_path / "judges.yaml"
    path.write_text("- {name: a, kind: pairwise}\n- name: b\n  kind: pointwise\n  kind: pairwise\n")
    with pytest.raises(PrefdataError, match=r"judges.yaml:4: duplicate key 'kind'"):
        _judges(path)
    path.write_text("- {name: a}\n- name: b\n  max_tokens: 2\n")
    with pytest.raises(PrefdataError, match=r"judges.yaml:3: 1.max_tokens: Input should be greater"):
        _judges(path)
    path.write_text("- {name: a}\n- {name: b, kind: pointwise}\n")
    assert [(j.name, j.kind) for j in _judges(path)] == [("a", "pairwise"), ("b", "pointwise")]
