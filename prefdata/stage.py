"""The one contract every stage of a build follows, from reading the sources to validating the data.

A `Stage` declares the tables of the flow it reads (`inputs`), the table its kept rows become (`output`) and
its config; its `run` returns an `Output`: the kept rows, the dropped rows (each with its stage and reason),
side tables (a judge's per-answer scores) and JSON-able facts. The runner (`prefdata.runner`) keys a saved
output by the inputs' fingerprints and the config, stores what the stage returned in the `Flow`, and checks
that rows in = kept + dropped for every stage: a row that vanishes is a bug, never a silent loss.

Rows are counted in the stage's own unit: prompts for sources and simulate, candidates for generate,
comparisons for judge (its kept rows are judgments, several per comparison) and pair, pairs from there on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import polars as pl

from prefdata.errors import PrefdataError

# the order of the build, as --from / --until name the stages (the curation steps form `curate`)
GROUPS = ("sources", "simulate", "generate", "judge", "pair", "curate", "review", "validate")


@dataclass
class Output:
    """What a stage returns."""

    kept: pl.DataFrame
    dropped: pl.DataFrame
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)  # side tables, saved and restored with it
    facts: dict[str, Any] = field(default_factory=dict)  # JSON-able: requests made, errors, the source mix
    rows_in: int | None = None  # rows read by a stage whose input is files (sources); else counted by the stage
    incomplete: bool = False  # requests failed or were refused: saved, not marked finished (a re-run retries)


def height(frame: pl.DataFrame) -> int:
    return frame.height


@dataclass(frozen=True)
class Stage:
    name: str  # its files in the run folder (`curate.0.dedupe`)
    inputs: tuple[str, ...]  # flow tables it reads; their fingerprints key its saved output
    output: str  # the flow table its kept rows become
    run: Callable[["Flow"], Output]
    config: Callable[["Flow"], Any] = lambda flow: None  # JSON-able; keys the saved output with the inputs
    group: str | None = None  # what --from / --until call it (default: its name)
    label: str | None = None  # its key in the manifest's counts (default: its name)
    rows_in: Callable[["Flow"], int] | None = None  # default: the height of its first input
    units: Callable[[pl.DataFrame], int] = height  # its kept rows counted in the unit of rows in
    reuse: bool = True  # False: it runs every time (reading files, validating the written folder)
    after: Callable[["Flow", Output], None] | None = None  # derived facts, before the output joins the flow

    def __post_init__(self) -> None:
        if (self.group or self.name) not in GROUPS:
            raise ValueError(f"stage {self.name}: group {self.group or self.name!r} is not one of {GROUPS}")


@dataclass
class Flow:
    """What the stages hand on: the tables by name, every dropped row, the counts and the facts."""

    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    dropped: list[pl.DataFrame] = field(default_factory=list)
    counts: dict[str, dict] = field(default_factory=dict)
    returned: dict[str, dict] = field(default_factory=dict)  # stage name -> the facts it returned
    facts: dict[str, Any] = field(default_factory=dict)  # derived by `after` hooks: judging, review, conversation
    failed: dict[str, dict] = field(default_factory=dict)  # stage -> failed requests, which a re-run retries

    def take(self, stage: Stage, output: Output, rows_in: int) -> None:
        """Store a stage's output (after the row check) and its counts."""
        self.tables[stage.output] = output.kept
        self.tables.update(output.tables)
        self.dropped.append(output.dropped)
        reasons = dict(sorted(output.dropped.group_by("reason").len().iter_rows()))
        self.counts[stage.label or stage.name] = {"in": rows_in, "kept": stage.units(output.kept),
                                                  "dropped": reasons, **output.facts.get("counts", {})}
        self.returned[stage.name] = output.facts


class RowsLost(PrefdataError):
    """A stage's rows in are not its kept plus dropped rows: a bug in that stage, reported, never passed on."""

    exit_code = 1


def check_rows(stage: Stage, flow: Flow, output: Output) -> int:
    """Rows in = kept + dropped, in the stage's unit; returns rows in."""
    if output.rows_in is not None:
        rows_in = output.rows_in
    elif stage.rows_in is not None:
        rows_in = stage.rows_in(flow)
    else:
        rows_in = flow.tables[stage.inputs[0]].height
    kept, dropped = stage.units(output.kept), output.dropped.height
    if rows_in != kept + dropped:
        raise RowsLost(f"stage {stage.name}: {rows_in} rows in but {kept} kept and {dropped} dropped: "
                       f"{rows_in - kept - dropped:+d} rows unaccounted for (a bug: please report it)")
    return rows_in
