"""The persistent request cache: SQLite in WAL mode, one row per finished request.

A finished answer is committed before it counts as done (before the progress bar moves): per batch
for batch backends, per answer for concurrent (HTTP) ones. So a build killed at any moment and run
again repeats no finished request. Failed requests are not cached: a re-run tries them again (an
answer that does not match its JSON schema is an answer, and is cached with its error).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Callable, Sequence

from prefdata.backends.base import Backend, ChatRequest, ChatResponse
from prefdata.errors import PrefdataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    response TEXT NOT NULL,
    created REAL NOT NULL
)
"""


class RequestCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self.writable = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False)
            self._db.execute("PRAGMA busy_timeout=10000")  # two builds may share one cache file
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process being killed (not a power cut), without an fsync each.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(SCHEMA)
            self._db.commit()
        except (sqlite3.Error, OSError) as exc:  # a folder, a file that is not SQLite, no permission
            raise PrefdataError(f"{self.path}: cannot use as the request cache ({exc}); name another file") from None

    @classmethod
    def read_only(cls, path: str | Path) -> "RequestCache":
        """The cache as a dry run reads it: looked up, never created or written (`put_many` does nothing)."""
        cache = cls.__new__(cls)
        cache.path, cache.hits, cache.misses, cache.writable = Path(path), 0, 0, False
        cache._db = sqlite3.connect(f"file:{cache.path}?mode=ro", uri=True, check_same_thread=False) \
            if cache.path.is_file() else None
        return cache

    def get_many(self, keys: Sequence[str]) -> dict[str, ChatResponse]:
        found: dict[str, ChatResponse] = {}
        if self._db is None:  # read-only, and no cache file yet
            return found
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters per statement
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for key, text in self._db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk):
                found[key] = ChatResponse.from_json(text)
        return found

    def put_many(self, backend: str, model: str, items: Sequence[tuple[str, ChatResponse]]) -> None:
        now = time.time()
        rows = [(key, backend, model, resp.to_json(), now) for key, resp in items if _keep(resp)]
        if not rows or not self.writable:
            return
        with self._db:  # one transaction, committed on exit
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", rows)

    def stats(self) -> dict:
        """Rows, tokens and age per backend and model, and the file's size."""
        query = """SELECT backend, model, COUNT(*), SUM(json_extract(response, '$.tokens_in')),
                          SUM(json_extract(response, '$.tokens_out')), MIN(created), MAX(created)
                   FROM responses GROUP BY backend, model ORDER BY backend, model"""
        models = [{"backend": b, "model": m, "responses": n, "tokens_in": int(ti or 0), "tokens_out": int(to or 0),
                   "oldest": first, "newest": last} for b, m, n, ti, to, first, last in self._db.execute(query)]
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return {"path": str(self.path), "responses": sum(m["responses"] for m in models), "bytes": size,
                "models": models}

    def clear(self, backend: str | None = None, model: str | None = None) -> int:
        """Delete cached answers (all, or one backend's / model's); returns how many."""
        where, args = [], []
        for column, value in (("backend", backend), ("model", model)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        with self._db:
            removed = self._db.execute(f"DELETE FROM responses{clause}", args).rowcount
        self._db.execute("VACUUM")
        return removed

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def default_path() -> Path:
    """The request cache every command shares unless told otherwise: PREFDATA_HOME/cache/requests.sqlite."""
    from prefdata.backends.embedded import home

    return home() / "cache" / "requests.sqlite"


def _keep(answer: ChatResponse) -> bool:
    """Answers are cached; failures are not (a re-run tries them again), except an answer that came but
    does not match its schema after the bounded retries: asking again would pay for the same text."""
    return answer.error is None or (answer.text is not None and answer.reason == "invalid_json")


def _refused(meter) -> ChatResponse:
    meter.refused += 1
    return ChatResponse(None, error=f"max_cost_reached: ${meter.spent:.4f} spent of max_cost ${meter.max_cost:.4f}")


def run_requests(
    backend: Backend,
    requests: Sequence[ChatRequest],
    cache: RequestCache | None,
    *,
    read_cache: bool = True,
    on_progress: Callable[[int], None] | None = None,
    meter=None,
) -> list[ChatResponse]:
    """Answer `requests` in order: cached answers first, then the rest, each answer committed when done.

    A request asked twice in one call is sent once. Backends with `acomplete` run concurrently
    (`backend.concurrency`); others in batches of `backend.batch_size`. `meter` (default: the one the
    run context set on the backend) counts tokens and cost, and once `max_cost` is spent the requests
    not yet sent fail with `max_cost_reached` instead of being sent.
    """
    meter = meter if meter is not None else getattr(backend, "meter", None)
    keys = [r.key(backend.name, backend.model) for r in requests]
    found = cache.get_many(keys) if cache is not None and read_cache else {}
    if cache is not None:
        cache.hits += len(found)
    if meter is not None:
        for answer in found.values():
            meter.record(backend.name, backend.model, answer, cached=True)
    if on_progress and found:
        on_progress(len(found))
    todo, asked = [], set()
    for i, key in enumerate(keys):  # one request per distinct key
        if key not in found and key not in asked:
            asked.add(key)
            todo.append(i)

    def done(i: int, answer: ChatResponse, *, committed: bool = False) -> None:
        if cache is not None:  # committed before it counts as done
            if not committed:
                cache.put_many(backend.name, backend.model, [(keys[i], answer)])
            cache.misses += 1
        if meter is not None and answer.reason != "max_cost_reached":
            meter.record(backend.name, backend.model, answer, cached=False, factor=_factor(backend))
        found[keys[i]] = answer
        if on_progress:
            on_progress(1)

    if hasattr(backend, "acomplete"):
        from prefdata.backends.http import run_sync

        run_sync(_run_concurrently(backend, requests, keys, todo, cache, done, meter))
    else:
        _run_batches(backend, requests, keys, todo, cache, meter, found, on_progress)
    return [found[key] for key in keys]


def _factor(backend) -> float:
    """The share of the listed price this backend's answers cost (a Batch API's discount)."""
    return getattr(backend, "price_factor", 1.0)


def _run_batches(backend, requests, keys, todo, cache, meter, found, on_progress) -> None:
    # Batches are cut from the whole request list, not from what is left to do, so that a resumed run
    # sends the same batches as an uninterrupted one: a local model's sampling (seeded per batch) and
    # padding then give the same answers, and the built data the same fingerprint.
    waiting = set(todo)
    cut = [[i for i in range(start, min(start + backend.batch_size, len(requests))) if i in waiting]
           for start in range(0, len(requests), backend.batch_size)]

    def keep(batch: list[int], answers: list[ChatResponse], sent: bool = True) -> None:
        if sent and meter is not None:
            for answer in answers:
                meter.record(backend.name, backend.model, answer, cached=False, factor=_factor(backend))
        if cache is not None:
            cache.put_many(backend.name, backend.model, [(keys[i], a) for i, a in zip(batch, answers)])
            cache.misses += len(batch)
        if hasattr(backend, "committed"):  # a Batch API backend forgets the batches whose answers are now kept
            backend.committed()
        found.update({keys[i]: a for i, a in zip(batch, answers)})
        if on_progress:
            on_progress(len(batch))

    def to_send():  # in order; once max_cost is spent, the batches not yet drawn are refused here
        for batch in filter(None, cut):
            if meter is not None and meter.exhausted:
                keep(batch, [_refused(meter) for _ in batch], sent=False)
            else:
                yield batch, [requests[i] for i in batch]

    if hasattr(backend, "map_batches"):  # a pool of workers (Ray) answers several batches at once, in any order
        for batch, answers in backend.map_batches(to_send()):
            keep(batch, answers)
    else:
        for batch, sent in to_send():
            keep(batch, backend.generate(sent))


class _GroupCommit:
    """Commits answers that arrive together in one transaction; each waits for its commit before it
    counts as done. Under load this turns one SQLite commit per answer into one per handful."""

    def __init__(self, cache: RequestCache, backend):
        self.cache, self.backend = cache, backend
        self.pending: list[tuple[str, ChatResponse, asyncio.Future]] = []
        self.flushing = False

    async def commit(self, key: str, answer: ChatResponse) -> None:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((key, answer, future))
        if not self.flushing:
            self.flushing = True
            await asyncio.sleep(0)  # let the answers that are ready now join this transaction
            batch, self.pending, self.flushing = self.pending, [], False
            try:
                self.cache.put_many(self.backend.name, self.backend.model, [(k, a) for k, a, _ in batch])
            except Exception as exc:  # every waiter learns of it; none counts as done
                for *_, waiter in batch:
                    waiter.set_exception(exc)
            else:
                for *_, waiter in batch:
                    waiter.set_result(None)
        await future


async def _run_concurrently(backend, requests, keys, todo, cache, done, meter) -> None:
    """`concurrency` workers take the next request in turn; each answer is committed as it arrives."""
    queue = iter(todo)
    group = _GroupCommit(cache, backend) if cache is not None else None

    async def worker() -> None:
        for i in queue:  # a shared iterator: each index is taken by exactly one worker
            if meter is not None and meter.exhausted:
                done(i, _refused(meter))
                continue
            answer = await backend.acomplete(requests[i])
            if group is not None:
                await group.commit(keys[i], answer)
            done(i, answer, committed=True)

    try:
        await asyncio.gather(*(worker() for _ in range(max(1, min(backend.concurrency, len(todo))))))
    finally:
        await backend.aclose()

