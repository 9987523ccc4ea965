"""What every stage receives besides its table and config: the request cache and progress display."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

from prefdata.backends.base import Backend
from prefdata.backends.cache import RequestCache
from prefdata.backends.cost import Meter


@dataclass
class Context:
    cache: RequestCache | None = None
    read_cache: bool = True  # False: ask the model again, still recording answers (--no-cache)
    quiet: bool = False
    tokens: dict[str, dict[str, int]] = field(default_factory=dict)  # model -> tokens in/out
    backends: dict[str, Backend] = field(default_factory=dict)
    meter: Meter = field(default_factory=Meter)  # tokens and cost per model; `max_cost` stops new requests
    artifacts: dict[str, list] = field(default_factory=dict)  # side tables a stage wants written (name -> frames)

    def keep(self, name: str, frame) -> None:
        self.artifacts.setdefault(name, []).append(frame)

    def backend(self, spec) -> Backend:
        """The backend a `BackendSpec` names, made once per run (a local model loads once)."""
        key = spec.model_dump_json()
        if key not in self.backends:
            from prefdata.backends import make_backend

            self.backends[key] = make_backend(spec)
            self.backends[key].meter = self.meter  # run_requests meters every answer of this backend
        return self.backends[key]

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A progress bar; yields `advance(n)`."""
        if self.quiet or total == 0:
            yield lambda n: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
            TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[cost]}"))
        with Progress(*columns) as bar:
            task = bar.add_task(description, total=total, cost=self.meter.line())
            yield lambda n: bar.update(task, advance=n, cost=self.meter.line())

    def count_tokens(self, model: str, tokens_in: int, tokens_out: int) -> None:
        used = self.tokens.setdefault(model, {"tokens_in": 0, "tokens_out": 0})
        used["tokens_in"] += tokens_in
        used["tokens_out"] += tokens_out
