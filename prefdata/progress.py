"""Progress on stderr, never stdout: a rich bar on a terminal, one-line updates everywhere else.

On a terminal the bar's stage name and counts are never cut: a narrow terminal drops the bar and the
time columns first, and a name longer than the line wraps instead of ending in an ellipsis. Anywhere
else (a log file, CI, nohup) a bar would be one unreadable line written at the end, so each stage prints
`name: done/total (share), rate, elapsed` when it starts, every `PREFDATA_PROGRESS_EVERY` seconds
(default 10) while it runs, even when no request finished in between, and when it ends.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

EVERY_S = 10.0
NARROW = 100  # below this many columns the bar and the time columns give way to the name and counts


def every_s() -> float:
    try:
        return max(0.05, float(os.environ.get("PREFDATA_PROGRESS_EVERY", EVERY_S)))
    except ValueError:
        return EVERY_S


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Lines:
    """One stage's periodic one-line updates (the non-terminal display)."""

    def __init__(self, name: str, total: int, stream: TextIO, extra: Callable[[], str] = lambda: "",
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.total, self.stream, self.extra, self.clock = name, total, stream, extra, clock
        self.done = 0
        self.started = self.last = clock()

    def line(self, end: str = "") -> str:
        elapsed = self.clock() - self.started
        rate = f"{self.done / elapsed:.2f}/s" if elapsed > 0 and self.done else "-/s"
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        try:
            extra = self.extra()
        except RuntimeError:  # the meter changed while this thread read it: leave it out of this line
            extra = ""
        return (f"{self.name}: {self.done}/{self.total}{share}, {rate}, {_clock(elapsed)} elapsed"
                f"{', ' + end if end else ''}{', ' + extra if extra else ''}")

    def emit(self, end: str = "") -> None:
        """One line; `end` says how the stage ended (done, stopped)."""
        self.last = self.clock()
        print(self.line(end), file=self.stream, flush=True)

    def advance(self, n: int) -> None:
        self.done += n

    def tick(self, every: float) -> bool:
        """Print when `every` seconds have passed since the last line; True when it printed."""
        if self.clock() - self.last >= every:
            self.emit()
            return True
        return False


@contextmanager
def line_progress(name: str, total: int, stream: TextIO | None = None, extra: Callable[[], str] = lambda: "",
                  every: float | None = None) -> Iterator[Callable[[int], None]]:
    stream = stream or sys.stderr
    every = every_s() if every is None else every
    lines = Lines(name, total, stream, extra)
    lines.emit()
    stop = threading.Event()

    def heartbeat() -> None:  # prints even while a long batch gives no progress at all
        while not stop.wait(min(every, 1.0)):
            lines.tick(every)

    thread = threading.Thread(target=heartbeat, daemon=True, name="prefdata-progress")
    thread.start()
    end = "stopped"
    try:
        yield lines.advance
        end = "done"
    finally:
        stop.set()
        thread.join()
        lines.emit(end)


@contextmanager
def bar_progress(name: str, total: int, console=None, extra: Callable[[], str] = lambda: "") \
        -> Iterator[Callable[[int], None]]:
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)
    from rich.table import Column

    console = console or Console(stderr=True)
    columns = [TextColumn("{task.description}", table_column=Column(overflow="fold", ratio=None)),
               MofNCompleteColumn(table_column=Column(no_wrap=True))]
    if console.width >= NARROW:
        columns[1:1] = [BarColumn()]
        columns += [TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[extra]}")]
    else:
        columns += [TimeElapsedColumn()]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(name, total=total, extra=extra())
        yield lambda n: bar.update(task, advance=n, extra=extra())


@contextmanager
def progress(name: str, total: int, extra: Callable[[], str] = lambda: "") -> Iterator[Callable[[int], None]]:
    """`advance(n)` for a stage of `total` items: a bar on a terminal (stderr), lines elsewhere."""
    display = bar_progress if sys.stderr.isatty() else line_progress
    with display(name, total, extra=extra) as advance:
        yield advance
