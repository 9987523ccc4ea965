"""Generation and judging over a Ray cluster: each worker is a Ray actor holding one backend (a local model loads
once per worker; an API backend runs its own concurrency there), and the build's driver hands it whole batches.

The driver keeps everything that makes a run a run: the request cache (looked up before, committed as each
batch comes back), the cost meter and the progress bar (`cache.run_requests`). Batches are cut from the whole
request list exactly as a local run cuts them, and a local model seeds its sampling per batch, so a worker
answers a batch as the local process would: the built data has the same bytes. A worker that dies is restarted by
Ray and its unanswered batches are sent again (`max_restarts`, `max_task_retries`); an answer reaches the cache
once, from the driver. A driver killed mid-run loses only the batches in flight: the next build finds the rest
cached. Ray is an extra (`pip install 'prefdata[ray]'`), imported only when a build asks for it.
"""

from __future__ import annotations

import socket
from typing import Any, Iterable, Iterator, Sequence

from prefdata.backends.base import ChatRequest, ChatResponse
from prefdata.errors import PrefdataError


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise PrefdataError("engine ray needs Ray: pip install 'prefdata[ray]'") from None
    return ray


class _Worker:
    """A Ray worker process (the actor's class; made remote in `RayEngine`): every backend it is asked for,
    each made on its first batch and kept (one pool serves generation and judging, so a worker holds the
    cluster's CPUs once, not once per backend)."""

    def __init__(self) -> None:
        self.backends: dict[tuple[str, bool], Any] = {}

    def answer(self, spec_json: str, reward: bool, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        from prefdata.backends.cache import run_requests

        if (spec_json, reward) not in self.backends:
            from prefdata.backends import make_backend, make_reward_backend
            from prefdata.spec import BackendSpec

            spec = BackendSpec.model_validate_json(spec_json)
            self.backends[spec_json, reward] = (make_reward_backend if reward else make_backend)(spec)
        return run_requests(self.backends[spec_json, reward], list(requests), None)  # the driver's cache is the one


class RayEngine:
    """A connection to a Ray cluster (`address`, or a local one started here) and its worker pools."""

    def __init__(self, address: str | None = None, workers: int | None = None, cpus_per_worker: float = 1.0,
                 gpus_per_worker: float = 0.0):
        self.address, self.workers = address, workers
        self.resources = {"num_cpus": cpus_per_worker, "num_gpus": gpus_per_worker}
        self._actors: list[Any] = []

    def connect(self) -> Any:
        ray = _ray()
        if not ray.is_initialized():
            self._reachable()
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as exc:
                raise PrefdataError(f"ray: cannot reach the cluster at {self.address}: {exc}") from None
        return ray

    def _reachable(self) -> None:
        """A host:port that answers nothing fails in seconds, not after Ray's long connection retries."""
        if self.address in (None, "auto") or "://" in self.address:
            return
        host, _, port = self.address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
        except (OSError, ValueError) as exc:
            raise PrefdataError(f"ray: cannot reach the cluster at {self.address} ({exc}); start it with "
                                f"`ray start --head` or fix engine.address / --ray-address") from None

    def size(self) -> int:
        """Workers per backend: as asked, else as many as the cluster's CPUs (or GPUs) hold."""
        if self.workers:
            return self.workers
        cluster = self.connect().cluster_resources()
        key, need = ("GPU", self.resources["num_gpus"]) if self.resources["num_gpus"] else \
            ("CPU", self.resources["num_cpus"])
        return max(1, int(cluster.get(key, 1) // max(need, 1e-9)))

    def wrap(self, spec: Any, local: Any, reward: bool = False) -> "RayBackend":
        return RayBackend(self, spec, local, reward)

    def pool(self) -> list[Any]:
        """The workers, started on first use; Ray restarts one that dies and re-sends its unanswered batches."""
        if not self._actors:
            ray = self.connect()
            remote = ray.remote(max_restarts=-1, max_task_retries=-1, **self.resources)(_Worker)
            self._actors = [remote.remote() for _ in range(self.size())]
        return self._actors

    def shutdown(self) -> None:
        ray = _ray()
        for actor in self._actors:  # a cluster that outlives the build gets its CPUs back
            ray.kill(actor)
        self._actors = []
        if ray.is_initialized():
            ray.shutdown()


class RayBackend:
    """Stands where the local backend would: the same name, model and batch size (so the same cache keys and
    batches), answering through a pool of workers. `map_batches` is what `run_requests` calls."""

    def __init__(self, engine: RayEngine, spec: Any, local: Any, reward: bool):
        self.engine, self.spec, self.reward = engine, spec, reward
        self.name, self.model, self.batch_size = local.name, local.model, local.batch_size
        self.gives_logprobs = getattr(local, "gives_logprobs", False)
        self.spec_json = spec.model_dump_json()

    def generate(self, requests: Sequence[ChatRequest]) -> list[ChatResponse]:
        return next(iter(self.map_batches([(0, list(requests))])))[1]

    def map_batches(self, batches: Iterable[tuple[Any, list[ChatRequest]]]) -> Iterator[tuple[Any, list]]:
        """Yield (tag, answers) for each (tag, requests) as workers finish them; at most two batches wait per
        worker, so that a budget (max_cost) checked while `batches` is drawn still stops new work."""
        ray, actors = self.engine.connect(), self.engine.pool()
        pending: dict[Any, Any] = {}
        source, turn = iter(batches), 0

        def fill() -> None:
            nonlocal turn
            while len(pending) < 2 * len(actors):
                item = next(source, None)
                if item is None:
                    return
                tag, requests = item
                actor = actors[turn % len(actors)]
                pending[actor.answer.remote(self.spec_json, self.reward, requests)] = (tag, len(requests))
                turn += 1

        fill()
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            tag, size = pending.pop(done[0])
            yield tag, _answers(ray, done[0], size)
            fill()


def _answers(ray: Any, ref: Any, size: int) -> list[ChatResponse]:
    """A batch's answers; a batch the cluster could not answer at all fails its requests, with the reason."""
    try:
        return ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - a Ray error of any kind becomes each request's error
        reason = f"ray_failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return [ChatResponse(None, error=reason) for _ in range(size)]
