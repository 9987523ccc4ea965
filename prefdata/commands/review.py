"""`prefdata review`: the local review page over a build folder or a dataset file.

Only typer at import time (the server and polars load inside the command), so `prefdata --help` stays fast.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Optional

import typer

LOOPBACK = "127.0.0.1"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def review(
    data: Path = typer.Argument(..., help="A build folder (OUT_DIR) or any dataset file prefdata reads."),
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port to serve on (0: any free one)."),
    host: Optional[str] = typer.Option(None, "--host", help=f"Address to bind (default {LOOPBACK}, this machine "
                                       "only). Another address makes the page and its decisions reachable from "
                                       "the network: only when given here."),
) -> None:
    """Read the pairs and overrule the judges in a local web page: accept, swap or drop each pair, with notes.
    Decisions go to review.jsonl beside the data as they are made; `prefdata build SPEC --from review` applies
    them (or a `human_review` curate step)."""
    from prefdata.errors import PrefdataError

    if not data.exists():
        raise PrefdataError(f"{data}: no such file or folder")
    chosen = host or LOOPBACK
    if not _loopback(chosen):
        print(f"warning: serving on {chosen}: anyone who can reach this address can read the data and record "
              "decisions", file=sys.stderr)
    try:
        from prefdata.review.server import serve
    except ImportError as exc:
        raise PrefdataError(f"prefdata review needs the review extra ({exc.name} is missing): "
                            "pip install 'prefdata[review]'") from None

    try:
        serve(data, host=chosen, port=port, announce=lambda line: print(line, file=sys.stderr, flush=True))
    except OSError as exc:
        raise PrefdataError(f"cannot serve on {chosen}:{port}: {exc.strerror or exc}") from None


def register(app: typer.Typer) -> None:
    app.command("review")(review)
