"""Resume: a `prefdata build` killed (SIGKILL) mid-run and run again sends no finished request twice and
writes the same data as a build that was never interrupted. Requests are counted at the server."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import polars as pl
import yaml

from conftest import ROOT
from fake_llm import FakeLLM
from prefdata.fingerprint import fingerprint

PROMPTS = ROOT / "examples" / "quickstart" / "prompts.jsonl"
ANSWERED_BEFORE_KILL = 7


def write_spec(work, url):
    backend = {"kind": "openai", "model": "fake-gpt", "base_url": url + "/v1", "concurrency": 4}
    spec = {"name": "resume", "sources": [{"path": str(PROMPTS), "limit": 6}],
            "generate": {"backend": backend, "n": 2, "max_tokens": 40},
            "judge": {"backend": backend}, "cache": "cache.sqlite", "output": {"dir": "out"}}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    return work / "spec.yaml"


def cached_rows(path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not there yet
        return 0
    finally:
        db.close()


def build(spec, out, **popen):
    return subprocess.Popen([sys.executable, "-m", "prefdata", "build", str(spec), "--output", str(out)],
                            cwd=ROOT, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def test_killed_build_resumes_without_repeating_a_request(tmp_path):
    work, reference = tmp_path / "work", tmp_path / "reference"
    work.mkdir()
    reference.mkdir()
    with FakeLLM() as fake:
        spec = write_spec(work, fake.url)
        fake.hang_after = ANSWERED_BEFORE_KILL  # later requests are held unanswered: the build is mid-run
        first = build(spec, work / "out")
        deadline = time.monotonic() + 120
        while cached_rows(work / "cache.sqlite") < ANSWERED_BEFORE_KILL or len(fake.received) <= ANSWERED_BEFORE_KILL:
            assert first.poll() is None, first.communicate()[1]
            assert time.monotonic() < deadline, "the build never got going"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert first.returncode == -signal.SIGKILL
        fake.release()
        held = len(fake.received) - ANSWERED_BEFORE_KILL
        assert held >= 1 and sum(fake.answered.values()) == ANSWERED_BEFORE_KILL
        assert not (work / "out" / "data.parquet").exists()

        fake.hang_after = None
        second = build(spec, work / "out")
        _, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        # Every distinct request was answered exactly once across the killed run and the re-run.
        assert set(fake.answered.values()) == {1}
        manifest = json.loads((work / "out" / "manifest.json").read_text())
        assert manifest["cache"]["hits"] == ANSWERED_BEFORE_KILL
        assert manifest["cache"]["misses"] == sum(fake.answered.values()) - ANSWERED_BEFORE_KILL

    with FakeLLM() as fresh:  # the same build, never interrupted, on a fresh cache
        done = build(write_spec(reference, fresh.url), reference / "out")
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, err
        assert sum(fresh.answered.values()) == sum(fake.answered.values())
    resumed = pl.read_parquet(work / "out" / "data.parquet")
    clean = pl.read_parquet(reference / "out" / "data.parquet")
    assert resumed.height > 0 and fingerprint(resumed) == fingerprint(clean)
    assert manifest["fingerprint"] == json.loads((reference / "out" / "manifest.json").read_text())["fingerprint"]
