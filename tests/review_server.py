"""A real review server on a free loopback port, in a thread, for the tests."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from prefdata.review import index
from prefdata.review.server import allowed_hosts, bind, make_app, url


@contextmanager
def serving(source: Path, token: str = "test-token"):
    """Yield (base URL, ReviewData) while a uvicorn server serves `source` on 127.0.0.1."""
    data = index.load(source)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(make_app(data, allowed_hosts("127.0.0.1"), token=token),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield url(sock, "127.0.0.1"), data
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def call(base: str, path: str, body: dict | bytes | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of a GET, or of a POST when `body` is given."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(base.rstrip("/") + path, data=data, headers=headers or {},
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = {"text": raw.decode(errors="replace")}
        return error.code, parsed, dict(error.headers)
