"""`prefdata validate`: the body of the command (registered in `prefdata/cli.py`).

Only typer is imported at module level, so that `prefdata --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

EXIT_PASSED, EXIT_FAILED = 0, 1


def validate(
    data: str = typer.Argument(..., help="Dataset file, dataset folder or Hub id."),
    tokenizer: Optional[str] = typer.Option(None, "--tokenizer", help="Model or tokenizer folder (or Hub id) for "
                                            "the training pre-flight: chat template, special tokens, lengths."),
    max_length: Optional[int] = typer.Option(None, "--max-length", help="Training max_length in tokens "
                                             "(default 1024, TRL's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for machines."),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="Input format (detected when omitted)."),
    split: Optional[str] = typer.Option(None, help="Split to read from a dataset folder or Hub id."),
    test: Optional[str] = typer.Option(None, "--test", help="A held-out split to check for prompt leakage."),
    category: Optional[str] = typer.Option(None, "--category", help="Input field holding each prompt's category."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="Take thresholds from this spec's `validation:` "
                                        "section (default: the build's spec in a dataset folder)."),
    settings: List[str] = typer.Option([], "--set", help="A threshold, NAME=VALUE (repeatable), e.g. "
                                       "--set min_pairs=200."),
    examples: int = typer.Option(3, "--examples", min=0, help="Offending rows shown per check."),
    gx: bool = typer.Option(False, "--gx", help="Also run the Great Expectations suite and write Data Docs "
                            "next to the dataset."),
    stamp: bool = typer.Option(True, "--stamp/--no-stamp", help="Write validation.json beside the data."),
) -> None:
    """Check a dataset before training: exit 0 when no error-level check fails, 1 when one does, 2 on bad input."""
    from prefdata.errors import PrefdataError
    from prefdata.validators.api import validate as run
    from prefdata.validators.report import as_json as to_json
    from prefdata.validators.report import print_report
    from prefdata.thresholds import parse_setting

    try:
        overrides = dict(parse_setting(s) for s in settings)
    except ValueError as exc:
        raise PrefdataError(f"--set: {exc}") from None
    spec_dict = None
    if spec is not None:
        from prefdata.spec import load_spec

        spec_dict = load_spec(spec).model_dump(mode="json")
    report = run(data, format=format, split=split, thresholds=overrides, spec=spec_dict, tokenizer=tokenizer,
                 max_length=max_length, test=test, category=category, examples=examples, stamp=stamp, gx=gx)
    if as_json:
        typer.echo(to_json(report))
    else:
        print_report(report)
    raise typer.Exit(EXIT_PASSED if report.passed else EXIT_FAILED)
