"""What gets installed: the folders validators/ and align/ install as prefdata.validators and prefdata.align,
so PyPI's `validators` (and `align`) can live beside prefdata without overwriting or deleting our files."""

import csv
import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from conftest import ROOT


def _declared() -> tuple[list[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return config["packages"], config["package-dir"]


def test_every_package_folder_is_declared_under_prefdata():
    packages, roots = _declared()
    found = set()
    for name, folder in roots.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    # a nested mapping (prefdata.validators) is also found under its parent's folder walk: keep what exists
    assert set(packages) == found
    assert all(p == "prefdata" or p.startswith("prefdata.") for p in packages)


def test_no_top_level_validators_or_align_is_importable_from_outside_the_repo(tmp_path):
    code = ("import importlib.util as u, prefdata.validators as v, prefdata.align as a; "
            "print(u.find_spec('validators') is None or 'site-packages/validators' in u.find_spec('validators').origin, "
            "u.find_spec('align') is None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


@pytest.mark.slow
def test_pypi_validators_installs_and_uninstalls_beside_ours(tmp_path):
    """Build our wheel, install it with PyPI's `validators` into one target folder, use both; then remove
    PyPI's package file by file (what `pip uninstall` does from its RECORD) and ours still works."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, ROOT], check=True,
                   cwd=tmp_path)
    got = subprocess.run([*pip, "download", "--no-deps", "-q", "-d", wheels, "validators"], capture_output=True,
                         text=True)
    if got.returncode != 0:
        pytest.skip(f"PyPI's validators cannot be downloaded here: {got.stderr.strip()[-200:]}")
    ours = next(wheels.glob("prefdata-*.whl"))
    theirs = next(wheels.glob("validators-*.whl"))
    for wheel in (ours, theirs):  # ours first: theirs would have overwritten our validators/ before
        subprocess.run([*pip, "install", "--no-deps", "-q", "--target", target, wheel], check=True)

    env = {**os.environ, "PYTHONPATH": str(target)}
    both = ("import validators, prefdata, prefdata.validators as ours; "
            f"assert prefdata.__file__.startswith({str(target)!r}), prefdata.__file__; "
            "assert validators.email('someone@example.com') is True; "
            "assert callable(ours.check_stamp) and callable(ours.validate); "
            "from prefdata.align.methods import METHODS; assert 'dpo' in METHODS; print('ok')")
    done = subprocess.run([sys.executable, "-c", both], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

    record = next(target.glob("validators-*.dist-info")) / "RECORD"
    for row in csv.reader(record.read_text().splitlines()):
        path = target / row[0]
        if path.is_file():
            path.unlink()
    shutil.rmtree(target / "validators", ignore_errors=True)
    after = ("import importlib.util as u; assert u.find_spec('validators') is None; "
             "from prefdata.validators.stamp import check_stamp; print('ok')")
    done = subprocess.run([sys.executable, "-c", after], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
