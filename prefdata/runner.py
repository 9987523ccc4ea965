"""Resumable stages: each stage's output is saved under the run folder with the fingerprint of its
inputs and config; a re-run with the same fingerprint loads it instead of running the stage again.

A stage's files are written to temporary names and renamed, and its marker (`<stage>.json`) is written
last, so a run killed at any moment leaves either a finished stage or none. An interrupted stage runs
again from the start, and the request cache answers every request it had already finished.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

import polars as pl

from prefdata import __version__, schema
from prefdata.errors import PrefdataError
from prefdata.fingerprint import fingerprint

STAGES = ("sources", "simulate", "generate", "judge", "pair", "curate", "review", "validate")


class StageSkipped(Exception):
    """Raised after `--until STAGE` has run: the build stops there, with every finished stage saved."""


def _atomic_parquet(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Runner:
    """Run stages in order, skipping those whose saved output matches their inputs and config.

    `fresh`: ignore every saved stage. `start`: re-run this stage and all after it. `until`: stop after it.
    """

    def __init__(self, folder: str | Path, *, fresh: bool = False, start: str | None = None,
                 until: str | None = None):
        for name in (start, until):
            if name is not None and name not in STAGES:
                raise PrefdataError(f"unknown stage {name!r} (stages: {', '.join(STAGES)})")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fresh, self.start, self.until = fresh, start, until
        self.ran: list[str] = []
        self.reused: list[str] = []

    def _forced(self, group: str) -> bool:
        if self.fresh:
            return True
        return self.start is not None and STAGES.index(group) >= STAGES.index(self.start)

    def key(self, name: str, inputs: list[pl.DataFrame], config: Any) -> str:
        digest = hashlib.sha256(f"{name}\x1f{__version__}\x1f".encode())
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        for frame in inputs:
            digest.update(fingerprint(frame).encode())
        return digest.hexdigest()

    def stage(self, name: str, inputs: list[pl.DataFrame], config: Any,
              run: Callable[[], tuple[schema.StageResult, dict[str, Any]]],
              group: str | None = None) -> tuple[schema.StageResult, dict]:
        """`run()` returns (result, extras); extras are JSON-able side results (counts, reports) or
        DataFrames (side tables), saved and restored with the stage. `extras["incomplete"]` true: the
        outputs are written but the stage is not marked finished, so the next run runs it again. `group`: the
        stage name that --from / --until know it by (several curation steps form the group `curate`)."""
        group = group or name
        key = self.key(name, inputs, config)
        marker = self.folder / f"{name}.json"
        outcome = None
        if not self._forced(group) and marker.is_file():
            saved = json.loads(marker.read_text(encoding="utf-8"))
            if saved.get("key") == key:
                self.reused.append(name)
                outcome = self._load(name, saved)
        if outcome is None:
            outcome = run()
            self._save(name, key, *outcome)
            self.ran.append(name)
            if outcome[1].get("incomplete"):  # failed or refused requests: a re-run must try them again
                (self.folder / f"{name}.json").unlink()
        if group == name:
            self.done(group)
        return outcome

    def done(self, group: str) -> None:
        """Stop here if the run was asked to end after `group`."""
        if self.until == group:
            raise StageSkipped(group)

    def _save(self, name: str, key: str, result: schema.StageResult, extras: dict) -> None:
        _atomic_parquet(result.kept, self.folder / f"{name}.kept.parquet")
        _atomic_parquet(result.dropped, self.folder / f"{name}.dropped.parquet")
        tables = {k: v for k, v in extras.items() if isinstance(v, pl.DataFrame)}
        for table, frame in tables.items():
            _atomic_parquet(frame, self.folder / f"{name}.{table}.parquet")
        values = {k: v for k, v in extras.items() if k not in tables}
        _atomic_text(json.dumps({"key": key, "tables": sorted(tables), "extras": values}, default=str),
                     self.folder / f"{name}.json")

    def _load(self, name: str, saved: dict) -> tuple[schema.StageResult, dict]:
        kept = pl.read_parquet(self.folder / f"{name}.kept.parquet")
        dropped = pl.read_parquet(self.folder / f"{name}.dropped.parquet")
        extras = dict(saved.get("extras", {}))
        extras.update({t: pl.read_parquet(self.folder / f"{name}.{t}.parquet") for t in saved.get("tables", [])})
        return schema.StageResult(kept, dropped), extras
