"""The review page: a Starlette app over one build folder or dataset file, served by uvicorn on loopback.

Safe by construction: every model text reaches the page as JSON and is put in with `textContent` (never as
HTML), and a Content-Security-Policy without 'unsafe-inline' stops any script the page did not ship. Requests
must name the bound host (no DNS rebinding) and a decision must carry the page's token (no cross-site posts).
Nothing is fetched from outside: the page's script and style are files of this package.
"""

from __future__ import annotations

import html
import secrets
import socket
from importlib.resources import files
from pathlib import Path
from threading import Lock

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from prefdata import strict_json
from prefdata.review import index, log

STATIC = files("prefdata.review") / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
MAX_BODY = 16_384  # bytes of one decision
PAGE = 50
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class JSON(JSONResponse):
    def render(self, content) -> bytes:  # strict JSON: NaN becomes null, as everywhere in prefdata
        return strict_json.dumps(content, indent=None).encode("utf-8")


def make_app(data: index.ReviewData, hosts: list[str], token: str | None = None) -> Starlette:
    token = token or secrets.token_urlsafe(24)
    lock = Lock()  # one decision at a time: lines of the log never interleave

    def page(_: Request) -> Response:
        body = (STATIC / "index.html").read_text(encoding="utf-8")
        body = body.replace("{{token}}", token).replace("{{title}}", html.escape(data.source.name))
        return _secure(HTMLResponse(body))

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return _secure(Response("not found", 404))
        return _secure(Response((STATIC / name).read_bytes(), media_type=ASSETS[name]))

    def meta(_: Request) -> Response:
        return _secure(JSON(index.meta(data)))

    def rows(request: Request) -> Response:
        query = request.query_params
        offset, limit = _int(query.get("offset"), 0), min(_int(query.get("limit"), PAGE), 500)
        filters = {k: query.get(k, "") for k in index.FILTERS}
        total, found = index.query(data, filters, offset, limit)
        return _secure(JSON({"total": total, "offset": offset, "rows": found}))

    def row(request: Request) -> Response:
        found = index.view(data, request.path_params["row"])
        return _secure(JSON(found) if found is not None else JSON({"error": "no such row"}, 404))

    async def decide(request: Request) -> Response:
        if not secrets.compare_digest(request.headers.get("x-review-token", ""), token):
            return _secure(JSON({"error": "missing or wrong token: reload the page"}, 403))
        body = await request.body()
        if len(body) > MAX_BODY:
            return _secure(JSON({"error": "decision too large"}, 413))
        try:
            decision = log.Decision.model_validate(log.parse_json(body.decode("utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            return _secure(JSON({"error": _one_line(exc)}, 400))
        if not ((data.index["kind"] == "pair") & (data.index["pair_id"] == decision.pair_id)).any():  # not a drop
            return _secure(JSON({"error": f"no pair {decision.pair_id!r} here"}, 404))
        with lock:
            log.append(data.log, decision)
            index.reload_decisions(data)
        return _secure(JSON({"decision": data.decisions.get(decision.pair_id), "meta": index.meta(data)}))

    routes = [Route("/", page), Route("/favicon.ico", lambda _: _secure(Response(status_code=204))),
              Route("/static/{name}", asset), Route("/api/meta", meta), Route("/api/rows", rows),
              Route("/api/row/{row:int}", row), Route("/api/decide", decide, methods=["POST"])]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts)])


def _secure(response: Response) -> Response:
    response.headers.update(HEADERS)
    return response


def _int(value: str | None, default: int) -> int:
    try:
        return max(int(value), 0) if value not in (None, "") else default
    except ValueError:
        return default


def _one_line(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        err = errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else err["msg"]
    return " ".join(str(exc).split())


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: a free one), made before the server starts so the URL can be printed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


def allowed_hosts(host: str) -> list[str]:
    if host in ("0.0.0.0", "::"):
        return ["*"]  # every interface: the person chose to be reachable by any name
    return sorted({host, *LOOPBACK})


def url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def serve(source: str | Path, host: str = "127.0.0.1", port: int = 8765, announce=print) -> None:
    """Load `source`, bind, print the URL, and serve until interrupted."""
    import uvicorn

    sock = bind(host, port)  # a port in use fails before the data is read
    announce(f"prefdata review: reading {source}")
    data = index.load(source, background=True)  # the row checks' flags follow in a thread
    announce(f"prefdata review: {url(sock, host)} ({data.index.height} rows; decisions go to {data.log}; "
             "Ctrl-C stops)")
    config = uvicorn.Config(make_app(data, allowed_hosts(host)), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
