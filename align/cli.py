"""The `align` command. Training itself (`align train`) is the align issue's work; this release
ships the command and the hardware report that profile selection builds on."""

from __future__ import annotations

import json

import typer

app = typer.Typer(help="Train DPO / KTO / ORPO / SimPO / IPO on validated prefdata datasets (TRL).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.callback()
def _root() -> None:
    """align: training on prefdata datasets."""


@app.command()
def hardware(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Report the accelerators this machine has (which training profiles can run here)."""
    from align.hardware import detect

    found = detect()
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    gpus = ", ".join(f"{g['name']} ({g['memory_gib']} GiB)" for g in found["gpus"]) or "none"
    typer.echo(f"torch {found['torch'] or 'not installed'}; GPUs: {gpus}; CPU cores: {found['cpu_cores']}")


def main() -> None:
    app()
