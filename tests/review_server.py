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


CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (.ci/run installs it); Playwright drives it, downloads nothing
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@contextmanager
def browser_page(width: int = 1400, height: int = 900):
    """A headless Chromium page; the test is skipped where Chromium is missing, unless CI requires it."""
    import os

    import pytest

    if not CHROMIUM.is_file():
        if os.environ.get("PREFDATA_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} missing: install Debian's chromium package (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        try:
            yield page, errors
        finally:
            browser.close()


def open_review(page, base: str) -> None:
    page.goto(base)
    wait_until(page, "document.body.dataset.ready === '1'", timeout=30)


def press(page, key: str) -> None:
    """Press a key and wait until the page has finished what it does for it (body[data-done] counts)."""
    _settled(page, lambda: page.keyboard.press(key))


def choose(page, select: str, value: str) -> None:
    """Set a filter and wait until the list and the first row are shown again."""
    _settled(page, lambda: page.select_option(select, value))


def _settled(page, act) -> None:
    before = int(page.evaluate("document.body.dataset.done || '0'"))
    act()
    wait_until(page, f"Number(document.body.dataset.done || 0) > {before}")


def wait_until(page, expression: str, timeout: float = 15.0) -> None:
    """Poll `expression` in the page (Playwright's wait_for_function evaluates strings with eval, which the
    page's Content-Security-Policy rightly refuses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        time.sleep(0.02)
