"""A build that keeps nothing is a failed build: no pairs fails validation, exits non-zero, and its card
neither says Passed nor offers `align train`; a check with no data to judge says skipped, never yes."""

import json

import yaml

from conftest import DPO_DEMO, run_cli
from prefdata.validators import check_stamp


def _spec(tmp_path, curate):
    spec = {"name": "nothing-kept", "sources": [{"path": str(DPO_DEMO)}], "generate": None, "curate": curate}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_a_build_that_keeps_no_pair_fails_validation_and_exits_1(tmp_path):
    # The demo pairs carry no scores, so a margin filter drops every one of them (no_margin).
    spec = _spec(tmp_path, [{"step": "filter", "min_margin": 2}])
    done = run_cli("build", spec, "--output", tmp_path / "out")
    assert done.returncode == 1, done.stderr
    assert "0 pairs written" in done.stderr and "validation FAILED" in done.stderr and "rows" in done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows"] == 0 and manifest["validation"]["passed"] is False
    checks = {c["name"]: c for c in manifest["validation"]["checks"]}
    assert checks["rows"]["passed"] is False and checks["rows"]["severity"] == "error"
    assert checks["length_bias"]["skipped"] and checks["empty_text"]["skipped"]
    assert check_stamp(tmp_path / "out").state == "failed"
    card = (tmp_path / "out" / "README.md").read_text()
    assert "**Failed**" in card and "**Passed**" not in card
    assert "| length_bias | warning | skipped |" in card and "| yes | None |" not in card
    assert "align train --" not in card and "refuses this data" in card


def test_validate_on_an_empty_file_fails(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = run_cli("validate", empty, "--format", "trl-conversational", "--no-stamp", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    rows = next(c for c in report["checks"] if c["name"] == "rows")
    assert not report["passed"] and not rows["passed"] and rows["value"] == 0


def test_required_rows_from_the_spec(tmp_path):
    """A spec can ask for more than one pair: fewer is an error too (the deduplicated demo pairs < 500)."""
    spec = yaml.safe_load(_spec(tmp_path, ["dedupe"]).read_text())
    spec["validation"] = {"required_rows": 500}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    done = run_cli("build", tmp_path / "spec.yaml", "--output", tmp_path / "out")
    rows = json.loads((tmp_path / "out" / "manifest.json").read_text())["rows"]
    assert done.returncode == 1 and f"rows ({rows} pairs; at least 500 needed)" in done.stderr
    ok = run_cli("validate", tmp_path / "out", "--no-stamp", "--set", f"required_rows={rows}")
    assert ok.returncode == 0, ok.stdout
