"""Run a command on a hostile input and say how it ended: the four outcomes issue 12 counts.

- `clean_error`: exit 2 and one line on stderr starting with `error:` (what bad input must get);
- `handled`: the command succeeded as the case expects (good rows kept, bad rows set aside, its check passes);
- `traceback`, `hang` (past the case's time bound), `silently_wrong` (exit 0 where an error was due, or the
  case's own check of the output failed): each of these three is a defect, and the corpus tests want none.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

DEFECTS = ("traceback", "hang", "silently_wrong")
Expect = Literal["error", "ok"]


@dataclass
class Case:
    """One hostile input. `argv` is a prefdata (or align) command line; `expect` what a correct program does;
    `check(done)` returns a complaint (str) when the output is wrong, None when it is right."""

    name: str
    argv: list[str]
    expect: Expect = "error"
    check: Callable[[subprocess.CompletedProcess], str | None] | None = None
    timeout: float = 60.0
    command: str = "prefdata"
    ok_codes: tuple[int, ...] = (0,)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    case: str
    kind: str
    detail: str = ""


def _one_line_error(stderr: str) -> bool:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return bool(lines) and lines[-1].startswith("error: ") and "Traceback" not in stderr and len(lines) == 1


def run_case(case: Case, cwd: Path) -> Outcome:
    module = {"prefdata": "prefdata.cli", "align": "prefdata.align.cli"}[case.command]
    argv = [sys.executable, "-c", f"from {module} import main; main()", *map(str, case.argv)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=case.timeout,
                              env={**os.environ, **case.env}, errors="replace")
    except subprocess.TimeoutExpired:
        return Outcome(case.name, "hang", f"no answer in {case.timeout:.0f} s")
    if "Traceback" in done.stderr or done.returncode not in (0, 1, 2):
        return Outcome(case.name, "traceback", done.stderr.strip().splitlines()[-1] if done.stderr.strip() else
                       f"exit {done.returncode}")
    if case.expect == "error":
        if done.returncode == 2 and _one_line_error(done.stderr):
            return Outcome(case.name, "clean_error", done.stderr.strip())
        if done.returncode == 2:
            return Outcome(case.name, "traceback", f"exit 2 but not one line: {done.stderr.strip()[:300]}")
        return Outcome(case.name, "silently_wrong", f"exit {done.returncode}, an error was due")
    if done.returncode not in case.ok_codes:
        kind = "clean_error" if done.returncode == 2 and _one_line_error(done.stderr) else "traceback"
        # an input the case says is usable must not be refused: that loses the good rows
        return Outcome(case.name, "silently_wrong" if kind == "clean_error" else kind,
                       f"exit {done.returncode}: {done.stderr.strip()[:300]}")
    complaint = case.check(done) if case.check else None
    if complaint:
        return Outcome(case.name, "silently_wrong", complaint)
    return Outcome(case.name, "handled")


def run_all(cases: list[Case], cwd: Path) -> list[Outcome]:
    return [run_case(case, cwd) for case in cases]


def summary(outcomes: list[Outcome]) -> dict[str, int]:
    counts = Counter(o.kind for o in outcomes)
    return {kind: counts.get(kind, 0) for kind in ("clean_error", "handled", *DEFECTS)}


def report(outcomes: list[Outcome]) -> str:
    lines = [f"{o.kind:15} {o.case}: {o.detail[:160]}" for o in outcomes if o.kind in DEFECTS]
    lines.append(" ".join(f"{k}={v}" for k, v in summary(outcomes).items()) + f" (of {len(outcomes)})")
    return "\n".join(lines)
