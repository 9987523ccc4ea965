"""A validation report for people (a rich table) and for machines (JSON)."""

from __future__ import annotations

import json
from typing import Any

from prefdata import strict_json
from prefdata.validators.result import CheckResult, Report


def as_json(report: Report) -> str:
    return strict_json.dumps(report.as_dict())


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)


def _status(check: CheckResult) -> str:
    if check.skipped:
        return "[dim]skipped[/dim]"
    if check.passed:
        return "[green]pass[/green]"
    return "[red]ERROR[/red]" if check.severity == "error" else "[yellow]warn[/yellow]"


def print_report(report: Report, console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    import sys

    # Piped output gets a readable width instead of rich's 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 132)
    table = Table(title=f"{report.data} ({report.kind}, {report.rows} rows)")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("value", max_width=16, overflow="ellipsis", no_wrap=True)
    table.add_column("threshold", max_width=18, overflow="fold")
    table.add_column("detail", overflow="fold", ratio=1)
    for check in report.checks:
        table.add_row(check.name, _status(check), _value(check.value), _value(check.threshold), check.message)
    console.print(table)
    for check in report.checks:
        if check.examples and not check.passed:
            console.print(f"[bold]{check.name}[/bold] examples:")
            for example in check.examples:
                console.print("  " + json.dumps(example, ensure_ascii=False, default=str), markup=False,
                              highlight=False)
    errors = sum(c.severity == "error" and not c.passed for c in report.checks)
    verdict = "[green]passed[/green]" if report.passed else f"[red]failed[/red] ({errors} error checks)"
    console.print(f"validation {verdict}, {report.warnings} warnings")
    if report.gx is not None:
        met = "all met" if report.gx["all_met"] else f"not met: {', '.join(report.gx['failed'])}"
        console.print(f"Great Expectations: {report.gx['expectations']} expectations, {met}; "
                      f"Data Docs: {report.gx['index']}", highlight=False)
