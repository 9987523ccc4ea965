"""Output folders: a build refuses a folder holding another dataset (the README's `convert ... out/hh` then
`build ... --output out/hh`), removes and names what an earlier build left that it does not write, and
`convert` refuses a build folder (its data.parquet would be read instead of the new dataset)."""

import yaml

from conftest import DPO_DEMO, run_cli


def _curate_spec(tmp_path):
    spec = {"name": "outdir", "sources": [{"path": str(DPO_DEMO)}], "generate": None, "curate": ["dedupe"],
            "validation": {"min_pairs": 10, "max_encoding_problem_share": 0.01}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def test_build_refuses_a_folder_holding_another_dataset(tmp_path):
    run_cli("convert", DPO_DEMO, tmp_path / "hh", check=True)
    done = run_cli("build", _curate_spec(tmp_path), "--output", tmp_path / "hh")
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "data-00000-of-00001.arrow" in done.stderr and "does not write" in done.stderr
    assert not (tmp_path / "hh" / "data.parquet").exists() and not (tmp_path / "hh" / ".run").exists()


def test_build_removes_and_names_what_an_earlier_build_left(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "scores.parquet").write_text("from a spec with a pointwise judge")
    (out / "validation_docs").mkdir()
    done = run_cli("build", _curate_spec(tmp_path), "--output", out)
    assert done.returncode == 0, done.stderr
    assert "this one did not write: scores.parquet, validation_docs" in done.stderr
    assert not (out / "scores.parquet").exists() and (out / "data.parquet").is_file()
    again = run_cli("build", _curate_spec(tmp_path), "--output", out)  # its own files: nothing to say
    assert again.returncode == 0 and "did not write" not in again.stderr


def test_convert_refuses_a_build_folder_and_replaces_its_own_dataset(tmp_path):
    out = tmp_path / "out"
    assert run_cli("build", _curate_spec(tmp_path), "--output", out).returncode == 0
    done = run_cli("convert", DPO_DEMO, out)
    assert done.returncode == 2 and "data.parquet" in done.stderr and "does not write" in done.stderr
    run_cli("convert", DPO_DEMO, tmp_path / "hh", check=True)
    again = run_cli("convert", DPO_DEMO, tmp_path / "hh", check=True)
    assert "replaced the dataset" in again.stderr and "data-00000-of-00001.arrow" in again.stderr
