"""The persistent request cache: SQLite in WAL mode, one row per finished request.

A batch's answers are committed before the next batch starts, so a build killed at any moment and
run again repeats no finished request. Failed requests are not cached: a re-run tries them again.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Callable, Sequence

from prefdata.backends.base import Backend, ChatRequest, ChatResponse

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(SCHEMA)
        self._db.commit()
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, ChatResponse]:
        found: dict[str, ChatResponse] = {}
        for start in range(0, len(keys), 500):  # SQLite caps bound parameters per statement
            chunk = list(keys[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for key, text in self._db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk):
                found[key] = ChatResponse.from_json(text)
        return found

    def put_many(self, backend: str, model: str, items: Sequence[tuple[str, ChatResponse]]) -> None:
        now = time.time()
        rows = [(key, backend, model, resp.to_json(), now) for key, resp in items if resp.error is None]
        with self._db:  # one transaction, committed on exit
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()


def run_requests(
    backend: Backend,
    requests: Sequence[ChatRequest],
    cache: RequestCache | None,
    *,
    read_cache: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> list[ChatResponse]:
    """Answer `requests` in order: cached answers first, the rest in batches, each batch committed."""
    keys = [r.key(backend.name, backend.model) for r in requests]
    found = cache.get_many(keys) if cache is not None and read_cache else {}
    if cache is not None:
        cache.hits += len(found)
    if on_progress and found:
        on_progress(len(found))
    todo = [i for i, key in enumerate(keys) if key not in found]
    for start in range(0, len(todo), backend.batch_size):
        batch = todo[start:start + backend.batch_size]
        answers = backend.generate([requests[i] for i in batch])
        if cache is not None:
            cache.put_many(backend.name, backend.model, [(keys[i], a) for i, a in zip(batch, answers)])
            cache.misses += len(batch)
        found.update({keys[i]: a for i, a in zip(batch, answers)})
        if on_progress:
            on_progress(len(batch))
    return [found[key] for key in keys]
