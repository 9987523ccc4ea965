"""A build whose requests fail says so: all failed is exit 1 with the first error and the count (not
"0 pairs written ... validation passed"); some failed is a warning with the count, the stage is left
unfinished, and a re-run sends only the failed requests again. Real builds, real local HTTP."""

import json
import socket

import polars as pl
import yaml

from conftest import run_cli
from fake_llm import FakeLLM

PROMPTS = ["What is the capital of France?", "Name a prime number above 10.", "Give one tip for sleeping well."]


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_spec(work, generate_url, judge_url, **backend):
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    common = {"kind": "openai", "model": "fake-gpt", "concurrency": 1, "max_attempts": 1, **backend}
    spec = {"name": "failures", "sources": [{"path": "prompts.jsonl"}],
            "generate": {"backend": {**common, "base_url": generate_url + "/v1"}, "n": 2, "max_tokens": 30},
            "judge": {"backend": {**common, "base_url": judge_url + "/v1"}}, "curate": [],
            "cache": "cache.sqlite", "output": {"dir": "out"}}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    return work / "spec.yaml"


def test_every_generation_request_failing_exits_1_and_says_why(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    done = run_cli("build", write_spec(tmp_path, url, url))
    assert done.returncode == 1, done.stderr
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: all 6 generate requests failed") and "first error: connection:" in error
    assert "pairs written" not in done.stderr and not (tmp_path / "out" / "data.parquet").exists()
    dropped = pl.read_parquet(tmp_path / "out" / ".run" / "generate.dropped.parquet")  # each row and its reason
    assert dropped.height == 6 and set(dropped["reason"]) == {"generation_failed"}


def test_every_judge_request_failing_exits_1_and_says_why(tmp_path):
    with FakeLLM() as fake:
        done = run_cli("build", write_spec(tmp_path, fake.url, f"http://127.0.0.1:{closed_port()}"))
        assert done.returncode == 1, done.stderr
        assert sum(fake.answered.values()) == 6  # the candidates were made; the judge could not be reached
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: all 6 judge requests failed") and "connection" in error


def test_unreadable_judge_answers_are_not_failed_requests(tmp_path):
    with FakeLLM() as fake:
        fake.judge_answer = '{"winner": "Dance"}'  # answered, but not a verdict
        done = run_cli("build", write_spec(tmp_path, fake.url, fake.url))
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "requests failed" not in done.stderr and "0 pairs written" in last and "validation FAILED: rows" in last
    judged = pl.read_parquet(tmp_path / "out" / "judgments.parquet")
    assert judged.height == 6 and not judged["parse_ok"].any() and judged["raw"].null_count() == 0
    assert judged["error"].str.starts_with("invalid_winner").all()


def test_some_failed_requests_are_counted_and_a_rerun_resumes_them(tmp_path):
    with FakeLLM() as fake:
        spec = write_spec(tmp_path, fake.url, fake.url)
        fake.faults.extend(["400", "400"])  # the first two requests are refused, once
        first = run_cli("build", spec)
        assert first.returncode in (0, 1), first.stderr  # 1: validation of a tiny set may fail
        assert "warning: 2 of 6 generate requests failed (first error: client_error: HTTP 400" in first.stderr
        assert "the generate stage is not marked finished: run the same build again" in first.stderr
        assert not (tmp_path / "out" / ".run" / "generate.json").exists()
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert manifest["failed_requests"]["generate"]["failed"] == 2
        assert manifest["counts"]["generate"]["dropped"] == {"generation_failed": 2}

        sent = len(fake.received)
        again = run_cli("build", spec)
        generation = [r for r in fake.received[sent:] if "impartial judge" not in json.dumps(r["body"])]
        assert len(generation) == 2  # only the two that failed; the four answers came from the cache
        assert "warning" not in again.stderr and (tmp_path / "out" / ".run" / "generate.json").exists()
        manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
        assert manifest["failed_requests"] == {} and manifest["counts"]["generate"]["kept"] == 6
