"""Secrets out of everything written or printed: credentials in URLs, Authorization values, API keys.

A `base_url` like `https://user:pass@host/v1` makes the HTTP client send Basic auth, and a server that
echoes the request puts the credentials (or their base64) into an error message, which lands in
dropped.parquet. Every error text, the manifest's spec and the card go through `redact_text`.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import unquote, urlsplit

# `scheme://user:pass@`, also as a path made of a URL prints it (`https:/user:pass@...`)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*:/{1,2})[^/\s@?#]+@")
# the HTTP schemes as written in headers; the value must look like a token (a digit or base64's + / =)
_AUTH_VALUE = re.compile(r"\b(Basic|Bearer)\s+(?=[A-Za-z._~\-]*[0-9+/=])[A-Za-z0-9+/=._~\-]{8,}")
_KEYISH = re.compile(r"\b(sk|key|token)-[A-Za-z0-9_*\-]{6,}", re.IGNORECASE)


def redact_text(text: str, *secrets: str | None) -> str:
    """`text` with URL credentials as `***@`, Basic/Bearer values and key-like tokens as `***`, and each
    of `secrets` (at least 4 characters) removed."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _URL_USERINFO.sub(r"\1***@", text)
    text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)} ***", text)
    return _KEYISH.sub("***", text)


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials a URL carries, in every form a server could echo them: `user:pass`, the password,
    and the base64 of `user:pass` that Basic auth sends."""
    if not url:
        return ()
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return ()
    if not user and not password:
        return ()
    pair = f"{unquote(user or '')}:{unquote(password or '')}"
    return tuple(s for s in (pair, unquote(password or ""), base64.b64encode(pair.encode()).decode()) if s)
