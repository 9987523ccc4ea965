"""Everything a spec can know is checked before the first request: files it names, the cache, format
names, the request count. Each case runs the real `prefdata build` (and `--dry-run`) against the local
test server and checks that the server received nothing."""

import json

import pytest
import yaml

from conftest import DPO_DEMO, run_cli
from fake_llm import FakeLLM

PROMPTS = ["What is the capital of France?", "Name a prime number above 10.", "Give one tip for sleeping well."]


@pytest.fixture
def server():
    with FakeLLM() as fake:
        yield fake


def write_spec(work, url, **extra):
    (work / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    backend = {"kind": "openai", "model": "fake-gpt", "base_url": url + "/v1", "max_attempts": 1}
    spec = {"name": "preflight", "sources": [{"path": "prompts.jsonl"}],
            "generate": {"backend": backend, "n": 2, "max_tokens": 30}, "judge": {"backend": backend},
            "cache": "cache.sqlite", "output": {"dir": "out"}, **extra}
    (work / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return work / "spec.yaml"


def refused(spec, server, message):
    """The dry run and the build both stop with one line holding `message`, exit 2, nothing sent."""
    for args in (["--dry-run"], []):
        done = run_cli("build", spec, *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, done.stderr
        assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert server.received == []
    assert not (spec.parent / "out" / "data.parquet").exists()


def test_a_missing_gold_file_fails_before_generation(tmp_path, server):
    spec = write_spec(tmp_path, server.url, gold={"path": "gold.jsonl"})
    line = spec.read_text().splitlines().index("gold:") + 2
    refused(spec, server, f"spec.yaml:{line}: gold.path: {tmp_path / 'gold.jsonl'}: no such file or folder")


def test_a_gold_file_that_is_not_pairs_fails_before_generation(tmp_path, server):
    spec = write_spec(tmp_path, server.url, gold={"path": "prompts.jsonl"})
    refused(spec, server, "gold items must be preference pairs (found prompts, 3 rows)")


@pytest.mark.parametrize("cache, message", [
    (".", "is a folder; name a file, e.g."),
    ("prompts.jsonl", "prompts.jsonl is not a SQLite file (not a request cache); name another file"),
    ("prompts.jsonl/cache.sqlite", "prompts.jsonl is a file, not a folder"),
])
def test_a_cache_that_cannot_be_a_sqlite_file_fails_before_anything_runs(tmp_path, server, cache, message):
    spec = write_spec(tmp_path, server.url, cache=cache)
    refused(spec, server, message)


def test_the_cache_refuses_a_folder_in_python_too(tmp_path):
    from prefdata.backends import RequestCache
    from prefdata.errors import PrefdataError

    with pytest.raises(PrefdataError, match="cannot use as the request cache"):
        RequestCache(tmp_path)


def test_missing_decontamination_sets_and_unknown_formats_fail_before_anything_runs(tmp_path, server):
    spec = write_spec(tmp_path, server.url, curate=[{"step": "decontaminate", "eval_sets": [str(tmp_path / "no")]}])
    refused(spec, server, "curate.0.eval_sets.0: " + str(tmp_path / "no") + ": no such file or folder")
    spec = write_spec(tmp_path, server.url, sources=[{"path": "prompts.jsonl", "format": "sharegtp"}])
    refused(spec, server, "sources.0.format: unknown format 'sharegtp' (choose from")


def test_a_reader_asking_for_format_names_the_spec_key(tmp_path, server):
    (tmp_path / "odd.jsonl").write_text('{"question": "hi"}\n')
    spec = write_spec(tmp_path, server.url, sources=[{"path": str(DPO_DEMO), "limit": 2}, {"path": "odd.jsonl"}])
    refused(spec, server, "set sources[1].format in the spec (")
    assert "--format" not in run_cli("build", spec, "--dry-run").stderr


def test_the_request_count_is_checked_once_the_prompts_are_read(tmp_path, server):
    spec = write_spec(tmp_path, server.url, max_requests=10)  # 3 prompts x (2 candidates + 2 verdicts) = 12
    refused(spec, server, "max_requests: this build would send 12 requests (3 prompts x 4 each")
    spec = write_spec(tmp_path, server.url, max_requests=12)
    assert run_cli("build", spec, "--dry-run").returncode == 0
