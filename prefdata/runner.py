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
from typing import Any

import polars as pl

from prefdata import __version__
from prefdata.errors import PrefdataError
from prefdata.fingerprint import fingerprint
from prefdata.stage import GROUPS as STAGES
from prefdata.stage import Flow, Output, Stage, check_rows


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

    def run(self, stage: Stage, flow: Flow) -> Output:
        """Run `stage` on the flow, or load its saved output when its inputs and config are unchanged; check
        rows in = kept + dropped; store the output and counts in the flow. An output marked `incomplete` is
        written but not marked finished, so the next run runs the stage again."""
        group = stage.group or stage.name
        if stage.reuse:
            key = self.key(stage.name, [flow.tables[n] for n in stage.inputs], stage.config(flow))
            output = None if self._forced(group) else self._load(stage.name, key)
            if output is None:
                output = stage.run(flow)
                self._save(stage.name, key, output)
                self.ran.append(stage.name)
            else:
                self.reused.append(stage.name)
        else:
            output = stage.run(flow)
        rows_in = check_rows(stage, flow, output)
        if stage.after is not None:  # before the output replaces the stage's input in the flow
            stage.after(flow, output)
        flow.take(stage, output, rows_in)
        if group == stage.name:
            self.done(group)
        return output

    def done(self, group: str) -> None:
        """Stop here if the run was asked to end after `group`."""
        if self.until == group:
            raise StageSkipped(group)

    def _save(self, name: str, key: str, output: Output) -> None:
        _atomic_parquet(output.kept, self.folder / f"{name}.kept.parquet")
        _atomic_parquet(output.dropped, self.folder / f"{name}.dropped.parquet")
        for table, frame in output.tables.items():
            _atomic_parquet(frame, self.folder / f"{name}.{table}.parquet")
        marker = self.folder / f"{name}.json"
        if output.incomplete:  # failed or refused requests: a re-run must try them again
            marker.unlink(missing_ok=True)
            return
        _atomic_text(json.dumps({"key": key, "tables": sorted(output.tables), "facts": output.facts,
                                 "rows_in": output.rows_in}, default=str), marker)

    def _load(self, name: str, key: str) -> Output | None:
        marker = self.folder / f"{name}.json"
        if not marker.is_file():
            return None
        saved = json.loads(marker.read_text(encoding="utf-8"))
        if saved.get("key") != key or "facts" not in saved:  # changed, or saved by an older version
            return None
        tables = {t: pl.read_parquet(self.folder / f"{name}.{t}.parquet") for t in saved["tables"]}
        return Output(pl.read_parquet(self.folder / f"{name}.kept.parquet"),
                      pl.read_parquet(self.folder / f"{name}.dropped.parquet"), tables, saved["facts"],
                      saved.get("rows_in"))
