"""A build on the embedded model, killed mid-run and run again, writes the same data as an uninterrupted
build (slow: three small builds on the CPU)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow


def small_spec(folder, cache):
    spec = yaml.safe_load((ROOT / "examples" / "quickstart" / "spec.yaml").read_text())
    spec["sources"] = [{"path": str(ROOT / "examples" / "quickstart" / "prompts.jsonl"), "limit": 4}]
    spec["generate"]["backend"]["batch_size"] = 2  # several batches, so the kill can fall between them
    spec["generate"]["max_tokens"] = 48
    spec["judges"] = [{**spec["judges"][0], "backend": {"kind": "embedded", "batch_size": 2}}]
    spec.pop("gold")
    spec["cache"] = str(cache)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def answered(cache) -> int:
    try:
        with sqlite3.connect(cache) as db:
            return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.Error:
        return 0


def build(spec, out):
    cmd = [sys.executable, "-m", "prefdata", "build", str(spec), "--output", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode in (0, 1), done.stderr  # 1: validation found an error in a tiny demo set
    return json.loads((out / "manifest.json").read_text())


def test_killed_build_resumes_to_the_same_data(tmp_path, embedded_model):
    (tmp_path / "a").mkdir()
    whole = build(small_spec(tmp_path / "a", tmp_path / "a" / "cache.sqlite"), tmp_path / "a" / "out")

    (tmp_path / "b").mkdir()
    cache = tmp_path / "b" / "cache.sqlite"
    spec = small_spec(tmp_path / "b", cache)
    cmd = [sys.executable, "-m", "prefdata", "build", str(spec), "--output", str(tmp_path / "b" / "out")]
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 600
    while answered(cache) < 3 and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the build finished before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before_kill = answered(cache)
    assert 0 < finished_before_kill < 16  # 8 generations + 8 verdicts in all

    resumed = build(spec, tmp_path / "b" / "out")
    assert resumed["cache"]["hits"] >= finished_before_kill  # nothing finished was asked again
    assert resumed["fingerprint"] == whole["fingerprint"]
