"""What every stage receives besides its table and config: the request cache and progress display."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from prefdata.backends.base import Backend
from prefdata.backends.cache import RequestCache
from prefdata.backends.cost import Meter


@dataclass
class Context:
    cache: RequestCache | None = None
    read_cache: bool = True  # False: ask the model again, still recording answers (--no-cache)
    quiet: bool = False
    backends: dict[str, Backend] = field(default_factory=dict)
    meter: Meter = field(default_factory=Meter)  # tokens and cost per model; `max_cost` stops new requests
    run_folder: Path | None = None  # a build's `<out>/.run`: where Batch API backends keep their batch ids
    engine: Any = None  # a RayEngine (prefdata.backends.ray_pool): backends answer through its workers

    def backend(self, spec, reward: bool = False) -> Backend:
        """The backend a `BackendSpec` names, made once per run (a local model loads once); `reward`: the
        reward-model backend for that spec (a `reward_model` judge), kept apart from the chat one."""
        key = ("reward:" if reward else "") + spec.model_dump_json()
        if key not in self.backends:
            from prefdata.backends import make_backend, make_reward_backend

            self.backends[key] = (make_reward_backend if reward else make_backend)(spec)
            made = self.backends[key]
            made.meter = self.meter  # run_requests meters every answer of this backend
            if hasattr(made, "run_folder"):  # a Batch API backend: where its batch ids outlive a killed run
                made.run_folder = self.run_folder or (self.cache.path.parent if self.cache is not None else None)
                made.quiet = self.quiet
            elif self.engine is not None:  # the same name, model and batches, answered by the cluster's workers
                made = self.backends[key] = self.engine.wrap(spec, made, reward)
                made.meter = self.meter
        return self.backends[key]

    @contextmanager
    def progress(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """Progress on stderr (`prefdata.progress`); yields `advance(n)`."""
        if self.quiet or total == 0:
            yield lambda n: None
            return
        from prefdata.progress import progress

        with progress(description, total, extra=self.meter.line) as advance:
            yield advance
