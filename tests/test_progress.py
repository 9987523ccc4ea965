"""Progress goes to stderr: a bar on a terminal that never cuts the stage name or counts, and one-line
updates (start, every N seconds, end) when stderr is not a terminal (a log file, CI, nohup)."""

import io
import json
import os
import re
import subprocess
import sys

import yaml

from conftest import ROOT
from fake_llm import FakeLLM
from prefdata.progress import Lines, bar_progress, line_progress

PROMPTS = ROOT / "examples" / "quickstart" / "prompts.jsonl"
NAME = "judge (smol-pairwise), re-ask 1"


def test_a_narrow_terminal_wraps_the_stage_name_and_keeps_the_counts():
    from rich.console import Console

    for width in (40, 20):
        screen = io.StringIO()
        console = Console(file=screen, force_terminal=True, width=width, color_system=None)
        with bar_progress(NAME, 96, console=console) as advance:
            advance(96)
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", " ", screen.getvalue())
        last = text[text.rindex("96/96") - width:]  # the final frame
        assert "…" not in text and "96/96" in last
        words = "".join(last.split())
        assert "".join(NAME.split()) in words.replace("96/96", "").replace("0:00:00", ""), last


def test_lines_print_every_interval_and_at_the_end():
    now = [0.0]
    out = io.StringIO()
    lines = Lines("generate (fake-gpt)", 12, out, extra=lambda: "$0.0000", clock=lambda: now[0])
    lines.emit()
    now[0] = 4.0
    lines.advance(4)
    assert not lines.tick(10)  # 4 s since the last line: nothing yet
    now[0] = 10.0
    assert lines.tick(10)
    now[0] = 24.0
    lines.advance(8)
    lines.emit("done")
    assert out.getvalue().splitlines() == [
        "generate (fake-gpt): 0/12 (0%), -/s, 0:00:00 elapsed, $0.0000",
        "generate (fake-gpt): 4/12 (33%), 0.40/s, 0:00:10 elapsed, $0.0000",
        "generate (fake-gpt): 12/12 (100%), 0.50/s, 0:00:24 elapsed, done, $0.0000",
    ]


def test_line_progress_prints_start_and_end_lines():
    out = io.StringIO()
    with line_progress("stage", 3, stream=out, every=60) as advance:
        advance(3)
    first, *_, last = out.getvalue().splitlines()
    assert first.startswith("stage: 0/3 (0%)") and last.startswith("stage: 3/3 (100%)") and ", done" in last
    broken = io.StringIO()
    try:
        with line_progress("stage", 3, stream=broken, every=60) as advance:
            advance(1)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert broken.getvalue().splitlines()[-1].startswith("stage: 1/3 (33%)") and ", stopped" in broken.getvalue()


def test_a_build_with_stderr_captured_prints_progress_lines_and_nothing_on_stdout(tmp_path):
    with FakeLLM() as fake:
        backend = {"kind": "openai", "model": "fake-gpt", "base_url": fake.url + "/v1", "concurrency": 2}
        spec = {"name": "progress", "sources": [{"path": str(PROMPTS), "limit": 4}],
                "generate": {"backend": backend, "n": 2, "max_tokens": 20},
                "judges": [{"name": "fake-judge", "backend": backend}], "cache": "cache.sqlite"}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        done = subprocess.run([sys.executable, "-m", "prefdata", "build", str(tmp_path / "spec.yaml"), "--output",
                               str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "COLUMNS": "40"})
    assert done.returncode in (0, 1), done.stderr  # 1: a tiny demo set fails a validation error check
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert "generate (fake-gpt): 0/8 (0%), -/s, 0:00:00 elapsed, $0.0000 · 0 tok · 0 cached" in lines
    assert any(re.fullmatch(r"generate \(fake-gpt\): 8/8 \(100%\), [0-9.]+/s, 0:00:\d\d elapsed, done, .*", line)
               for line in lines), lines
    assert any(line.startswith("judge (fake-judge): 8/8 (100%)") and ", done" in line for line in lines), lines
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["rows"] > 0
