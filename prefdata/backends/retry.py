"""Retries for HTTP backends (tenacity): exponential backoff with jitter, `Retry-After` honoured.

Errors are sorted into categories once, here, for both SDKs (they share one exception design):
429 -> rate_limited, 5xx/408/409/529 -> server_error, timeouts, connection errors (a truncated body
is one), unreadable bodies (bad_response) are transient and retried; anything else (400, 401, 404,
...) is permanent and fails its row at once. A request that still fails comes back as an error
response `"category: message (after N attempts)"`, so it fails its row, never its batch.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter
from tenacity.wait import wait_base

from prefdata.errors import PrefdataError
from prefdata.redact import redact_text

TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}
TRANSIENT = {"rate_limited", "server_error", "timeout", "connection", "bad_response"}


@dataclass
class Failure(Exception):
    """A classified failure of one attempt."""

    category: str
    message: str
    retry_after: float | None = None

    @property
    def transient(self) -> bool:
        return self.category in TRANSIENT

    def __str__(self) -> str:
        return f"{self.category}: {self.message}"


def retry_after_s(headers) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date), if given."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return None if parsed is None else max(0.0, parsed.timestamp() - time.time())


def redact(text: str, *secrets: str | None) -> str:
    """Remove API keys and credentials from an error message (servers sometimes echo them)."""
    return redact_text(text, *secrets)


def classify(exc: BaseException) -> Failure:
    """Sort an SDK (openai, anthropic) or transport exception into a category."""
    if isinstance(exc, Failure):
        return exc
    name = type(exc).__name__
    status = getattr(exc, "status_code", None)
    message = str(exc).strip().replace("\n", " ")[:300] or name
    if isinstance(status, int):
        response = getattr(exc, "response", None)
        wait = retry_after_s(getattr(response, "headers", None))
        if status == 429:
            return Failure("rate_limited", f"HTTP 429 {message}", wait)
        if status in TRANSIENT_STATUS or status >= 500:
            return Failure("server_error", f"HTTP {status} {message}", wait)
        return Failure("client_error", f"HTTP {status} {message}")
    if "Timeout" in name:
        return Failure("timeout", message)
    if "Connection" in name or isinstance(exc, (ConnectionError, EOFError)):
        cause = exc.__cause__ or exc.__context__
        return Failure("connection", f"{message} ({type(cause).__name__}: {cause})" if cause else message)
    if "Validation" in name or isinstance(exc, ValueError):  # a 200 whose body is not the expected JSON
        return Failure("bad_response", message)
    return Failure("backend_error", f"{name}: {message}")


class _wait(wait_base):
    """Backoff with jitter, unless the server said how long to wait (capped at `most`)."""

    def __init__(self, initial: float, most: float):
        self.backoff = wait_exponential_jitter(multiplier=initial, max=most, jitter=initial)
        self.most = most

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Failure) and exc.retry_after is not None:
            return min(exc.retry_after, self.most)
        return self.backoff(state)


async def with_retries(attempt: Callable[[], Awaitable], *, max_attempts: int, initial_s: float, max_wait_s: float,
                       secrets: tuple[str | None, ...] = ()):
    """Run `attempt` until it succeeds or fails permanently; raises the last `Failure` (redacted).

    The first try runs outside tenacity (most requests succeed at once, and tenacity's bookkeeping is
    the larger part of this layer's cost per request); a failed first try is handed to tenacity as its
    attempt 1, so waits and the attempt count are the same as if tenacity had made it.
    """
    try:
        return await attempt()
    except PrefdataError:  # a setup error (no API key, a missing extra) is the run's, not the row's
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes unsorted
        first: Failure | None = classify(exc)
    tries = 0

    async def once():
        nonlocal first, tries
        tries += 1
        if first is not None:
            failure, first = first, None
            raise failure
        try:
            return await attempt()
        except PrefdataError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise classify(exc) from None

    retrying = AsyncRetrying(stop=stop_after_attempt(max_attempts), wait=_wait(initial_s, max_wait_s),
                             retry=retry_if_exception(lambda e: isinstance(e, Failure) and e.transient),
                             reraise=True)
    try:
        return await retrying(once)
    except Failure as failure:
        raise Failure(failure.category, redact(f"{failure.message} (after {tries} attempts)", *secrets)) from None
