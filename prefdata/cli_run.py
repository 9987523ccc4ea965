"""How the `prefdata` and `align` commands end: one line and exit 2 for every usage error and bad input,
a traceback only with --debug (or for a real bug).

Typer 0.2x vendors its own copy of click (`typer._click`) and raises its own exception classes, which are
not click's; an older typer raises click's. Exceptions are therefore recognised by the names of their
classes (UsageError, ClickException, Abort, Exit), whichever module defines them, so the contract holds
with whatever version a fresh install resolves.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable


def _is(exc: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def one_line(text: str) -> str:
    """The message on one line, credentials in URLs and Authorization values never reaching the terminal."""
    from prefdata.redact import redact_text

    return redact_text(" ".join(str(text).split()))


def _usage_line(exc: Any, name: str) -> str:
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    ctx = getattr(exc, "ctx", None)
    return f"error: {one_line(message)} (see '{ctx.command_path if ctx is not None else name} --help')"


def run(app: Any, name: str, debug: Callable[[], bool] = lambda: False) -> None:
    """Run a Typer app and exit with its code; never let a usage error or bad input become a traceback."""
    from prefdata.errors import PrefdataError

    try:
        code = app(standalone_mode=False)
    except BaseException as exc:  # noqa: BLE001 - sorted below, re-raised when it is a bug
        if isinstance(exc, SystemExit):
            raise
        if _is(exc, "NoArgsIsHelpError"):  # the command alone: its help, as click prints it
            exc.show()
            sys.exit(2)
        if _is(exc, "UsageError"):
            print(_usage_line(exc, name), file=sys.stderr)
            sys.exit(2)
        if _is(exc, "ClickException"):
            print(f"error: {one_line(exc.format_message())}", file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 1) or 1)
        if _is(exc, "Abort") or isinstance(exc, KeyboardInterrupt):
            print("aborted", file=sys.stderr)
            sys.exit(130)
        if _is(exc, "Exit"):
            sys.exit(getattr(exc, "exit_code", 0))
        if isinstance(exc, (PrefdataError, OSError)):
            if debug():
                traceback.print_exc()
            else:
                record = (getattr(exc, "line", None) or getattr(exc, "row", None)) and not getattr(exc, "whole_file", 0)
                hint = " (--on-error skip sets bad records aside)" if record else ""
                print(f"error: {one_line(exc)}{hint}", file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 2))
        raise
    sys.exit(code or 0)


def version_callback(name: str) -> Callable[[bool], None]:
    """A Typer callback for --version: prints `name version` and stops."""

    def show(value: bool) -> None:
        if value:
            from importlib import metadata

            try:
                version = metadata.version("prefdata")
            except metadata.PackageNotFoundError:  # running from a source tree that is not installed
                from prefdata import __version__ as version
            print(f"{name} {version}")
            raise SystemExit(0)

    return show
