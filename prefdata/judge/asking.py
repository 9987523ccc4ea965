"""Ask a judge, and re-ask with a corrective message (up to a bound) when its answer cannot be read.

Every answer that came back is kept with its text (and is in the request cache), readable or not, so a
re-run reads the same answers again without asking or paying. A row's `error` is the request's failure
when no answer came, else why the last answer could not be read, else None (`error_of`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

from prefdata.backends import Backend, ChatRequest, SamplingParams, run_requests
from prefdata.context import Context
from prefdata.judge.prompts import CORRECTION

RETRY_MARK = "\n\n--- re-asked ---\n\n"


@dataclass
class Asked:
    texts: list[str] = field(default_factory=list)  # every answer, prefill included, in order
    error: str | None = None  # the request's failure when no answer came
    logprobs: list | None = None  # the last answer's token log-probabilities, when the backend gave them

    @property
    def last(self) -> str | None:
        return self.texts[-1] if self.texts else None

    @property
    def raw(self) -> str | None:
        return RETRY_MARK.join(self.texts) if self.texts else None


def error_of(asked: Asked, parsed) -> str | None:
    """The row's `error`: the request's failure, or why the parsed answer (a Verdict or Score) is unreadable."""
    if parsed is None:
        return asked.error or "no_answer: the judge gave no answer"
    return parsed.error


def judge_params(backend: Backend, max_tokens: int) -> SamplingParams:
    """Greedy judge sampling; with token log-probabilities (20 alternatives) where the backend gives them, so
    that the judge's confidence can be read (`prefdata.judge.confidence`)."""
    logprobs = 20 if getattr(backend, "gives_logprobs", False) else 0
    return SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_tokens, logprobs=logprobs)


def ask(backend: Backend, requests: Sequence[ChatRequest], readable: Callable[[str], bool], retries: int,
        ctx: Context, label: str) -> list[Asked]:
    """Answer every request; re-ask those whose answer `readable` rejects, at most `retries` times."""
    asked = [Asked() for _ in requests]
    pending = list(range(len(requests)))
    current = list(requests)
    for attempt in range(retries + 1):
        if not pending:
            break
        batch = [current[i] for i in pending]
        with ctx.progress(label if attempt == 0 else f"{label}, re-ask {attempt}", len(batch)) as advance:
            answers = run_requests(backend, batch, ctx.cache, read_cache=ctx.read_cache, on_progress=advance)
        still = []
        for i, answer in zip(pending, answers):
            if answer.text is None:
                asked[i].error = answer.error
                continue
            text = current[i].prefill + answer.text
            asked[i].texts.append(text)
            asked[i].logprobs = answer.logprobs
            if not readable(text):
                follow = current[i].messages + (("assistant", text), ("user", CORRECTION))
                current[i] = replace(current[i], messages=follow)
                still.append(i)
        pending = still
    return asked
