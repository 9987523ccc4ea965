"""Two builds started together on a fresh machine convert the embedded model once (slow: one conversion)."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.slow


def test_two_pulls_at_once_convert_once_and_both_succeed(tmp_path):
    env = {**os.environ, "PREFDATA_HOME": str(tmp_path)}
    cmd = [sys.executable, "-m", "prefdata", "models", "pull"]
    runs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = [(run.wait(600), *run.communicate()) for run in runs]
    assert [code for code, _, _ in results] == [0, 0], results
    said = "".join(err for _, _, err in results)
    assert said.count("converting ") == 1  # the second waited on the lock, then found the folder ready
    folder = tmp_path / "models" / "SmolLM2-135M-Instruct"
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert not folder.with_name(folder.name + ".partial").exists()
