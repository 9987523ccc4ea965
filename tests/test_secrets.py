"""Secrets never reach a written file or the terminal: credentials in a `base_url` (which the HTTP client
sends as Basic auth, and a server may echo), and `${VAR}` values used in the spec's name and description.

A real build against the local test server (tests/fake_llm.py): a prompt holding ECHO_AUTH is refused
with the request's Authorization header echoed in the error, as some proxies do.
"""

import base64
import json
import sqlite3

import polars as pl
import pytest
import yaml

from conftest import run_cli
from fake_llm import FakeLLM
from prefdata.backends.cache import SCHEMA
from prefdata.spec import load_spec

USER, PASSWORD = "alice", "pw-Zq8x3Kd9Lm2"
NAME_SECRET = "acme-internal-project-7731"
PROMPTS = ["What is the capital of France?", "Name a prime number above 10.", "ECHO_AUTH: say hello."]


def texts_under(folder) -> dict[str, str]:
    """Every file under `folder` as text: parquet tables as their rows, SQLite files as their rows."""
    found = {}
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            found[str(path)] = "\n".join(map(str, pl.read_parquet(path).rows()))
        elif path.suffix == ".sqlite":
            db = sqlite3.connect(path)
            tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            found[str(path)] = "\n".join(str(row) for t in tables for row in db.execute(f"SELECT * FROM {t}"))
            db.close()
        elif not path.name.endswith(("-wal", "-shm")):
            found[str(path)] = path.read_bytes().decode("utf-8", "replace")
    return found


@pytest.fixture
def leaky_build(tmp_path, monkeypatch):
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    monkeypatch.setenv("PD_SECRET_NAME", NAME_SECRET)
    with FakeLLM() as fake:
        url = fake.url.replace("http://", f"http://{USER}:{PASSWORD}@") + "/v1"
        backend = {"kind": "openai", "model": "fake-gpt", "base_url": url, "concurrency": 2, "max_attempts": 1}
        spec = {"name": "${PD_SECRET_NAME}", "description": "Pairs for ${PD_SECRET_NAME}, built in a test.",
                "sources": [{"path": "prompts.jsonl"}], "generate": {"backend": backend, "n": 2, "max_tokens": 30},
                "judge": {"backend": backend}, "cache": "cache.sqlite", "curate": [], "output": {"dir": "out"}}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        done = run_cli("build", tmp_path / "spec.yaml")
        yield tmp_path, fake, done


def test_url_credentials_are_sent_but_never_written_or_printed(leaky_build):
    work, fake, done = leaky_build
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert fake.received[0]["headers"]["authorization"] == f"Basic {basic}"  # what the server was given
    dropped = pl.read_parquet(work / "out" / "dropped.parquet")
    echoed = dropped.filter(pl.col("reason") == "generation_failed")["detail"].to_list()
    assert len(echoed) == 2 and all("401" in d and "Authorization: Basic ***" in d for d in echoed)
    assert done.returncode in (0, 1), done.stderr  # the build finished (validation may fail on 2 pairs)
    assert "2 of 6 generate requests failed" in done.stderr
    written = {k: v for k, v in texts_under(work).items() if not k.endswith("spec.yaml")}  # the input itself
    assert {str(work / name) for name in ("out/manifest.json", "out/README.md", "out/dropped.parquet",
                                          "cache.sqlite")} <= set(written)
    for where, text in {**written, "stderr": done.stderr, "stdout": done.stdout}.items():
        for secret in (PASSWORD, basic, f"{USER}:{PASSWORD}"):
            assert secret not in text, f"{secret!r} leaked into {where}"
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    assert manifest["spec"]["generate"]["backend"]["base_url"] == f"http://***@127.0.0.1:{fake.port}/v1"


def test_environment_values_in_name_and_description_stay_out_of_manifest_and_card(leaky_build):
    work, _, _ = leaky_build
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    card = (work / "out" / "README.md").read_text()
    assert manifest["name"] == "${PD_SECRET_NAME}" and manifest["spec"]["name"] == "${PD_SECRET_NAME}"
    assert "# ${PD_SECRET_NAME}" in card and "Pairs for ${PD_SECRET_NAME}, built in a test." in card
    assert NAME_SECRET not in card and NAME_SECRET not in json.dumps(manifest)


def test_the_cache_stores_no_request_headers():
    db = sqlite3.connect(":memory:")
    db.execute(SCHEMA)
    columns = [row[1] for row in db.execute("PRAGMA table_info(responses)")]
    assert columns == ["key", "backend", "model", "response", "created"]


def test_redaction_of_urls_authorization_values_and_their_base64():
    from prefdata.redact import redact_text, url_secrets

    secrets = url_secrets("https://bob:p%40ss-word@llm.example.com/v1")
    assert secrets == ("bob:p@ss-word", "p@ss-word", base64.b64encode(b"bob:p@ss-word").decode())
    echoed = f"HTTP 401 from https://bob:p%40ss-word@llm.example.com/v1: got Basic {secrets[2]} (bob:p@ss-word)"
    clean = redact_text(echoed, *secrets)
    assert clean == "HTTP 401 from https://***@llm.example.com/v1: got Basic *** (***)"
    assert redact_text("a basic answer; Bearer of bad news") == "a basic answer; Bearer of bad news"  # prose stays


def test_spec_public_and_errors_hide_url_credentials(tmp_path, monkeypatch):
    (tmp_path / "spec.yaml").write_text(
        f"name: x\nsources: [{{path: 'https://{USER}:{PASSWORD}@h.example/p.jsonl'}}]\ngenerate:\n  backend: "
        f"{{kind: openai, model: m, base_url: 'https://{USER}:{PASSWORD}@h.example/v1'}}\n")
    spec = load_spec(tmp_path / "spec.yaml")
    assert spec.generate.backend.base_url == f"https://{USER}:{PASSWORD}@h.example/v1"  # used as given
    assert spec.public()["generate"]["backend"]["base_url"] == "https://***@h.example/v1"
    done = run_cli("build", tmp_path / "spec.yaml", "--dry-run")  # no such source: the error names the URL
    assert done.returncode == 2 and "https:/***@h.example/p.jsonl: no such file" in done.stderr  # a path: one /
    assert PASSWORD not in done.stderr
